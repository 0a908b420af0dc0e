"""Where a run's files live: `<root>/<dag_id>/<district>/<window>/<run_id>/`, private, removed after success.

The root comes from ATTENDANCE_STAGING_URL: a local path for one machine, a shared volume or an
object store (`s3://...`) when workers are many. Every task of a run addresses the same folder,
so tasks exchange paths, never DataFrames.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import ObjectStoragePath

DEFAULT_ROOT = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "attendance-staging"


def root() -> ObjectStoragePath:
    url = os.environ.get("ATTENDANCE_STAGING_URL") or f"file://{DEFAULT_ROOT}"
    return ObjectStoragePath(url if "://" in url else f"file://{Path(url).resolve()}")


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", part)


def run_folder(dag_id: str, slug: str, window: str, run_id: str) -> ObjectStoragePath:
    """The folder of one district's files for one run, created private (0700 on a local disk)."""
    folder = root() / _safe(dag_id) / slug / _safe(window) / _safe(run_id)
    make_private(folder)
    return folder


def hold_folder(slug: str, review_run_id: str) -> ObjectStoragePath:
    """Where a district's held rows wait for a person's decision (removed once it is made)."""
    return root() / "_holds" / _safe(slug) / _safe(review_run_id)


def make_private(folder: ObjectStoragePath) -> None:
    """Create the folder; on a local disk it and every folder up to the root are owner-only (0700)."""
    folder.mkdir(parents=True, exist_ok=True)
    if folder.protocol not in ("file", "local"):
        return  # an object store's privacy is its bucket policy
    base, path = Path(root().path), Path(folder.path)
    while True:
        path.chmod(0o700)
        if path == base or base not in path.parents:
            return
        path = path.parent


def open_private(path: ObjectStoragePath, mode: str = "wb"):
    """Open a staging file for writing; on a local disk it is created readable by its owner only."""
    if path.protocol in ("file", "local"):
        fd = os.open(path.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        return os.fdopen(fd, mode)
    return path.open(mode)


def remove_older(folder: ObjectStoragePath, before: datetime, depth: int = 2) -> int:
    """Delete the folders `depth` levels under `folder` last changed before `before`: files of runs (depth 3:
    district, window, run) or holds (depth 2: district, hold) past their retention. How many were deleted."""
    if not folder.exists():
        return 0
    if depth == 0:
        changed = folder.stat().st_mtime  # seconds on a disk; a datetime from an object store
        if (changed if isinstance(changed, datetime) else datetime.fromtimestamp(changed, UTC)) >= before:
            return 0
        remove(folder)
        return 1
    return sum(remove_older(inner, before, depth - 1) for inner in folder.iterdir() if inner.is_dir())


def sweep(dag_id: str, now: datetime, staging_days: int, holds_days: int) -> int:
    """Remove what a DAG's runs left with student data in it, whatever their outcome: a failed or dry run's files
    after `staging_days`, held rows after `holds_days`. How many folders went."""
    return (remove_older(root() / _safe(dag_id), now - timedelta(days=staging_days), depth=3)
            + remove_older(root() / "_holds", now - timedelta(days=holds_days), depth=2))


def remove(folder: ObjectStoragePath) -> None:
    """Delete a run's folder and everything in it."""
    if folder.exists():
        folder.fs.rm(folder.path, recursive=True)
