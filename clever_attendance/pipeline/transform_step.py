"""The transform step: the staged raw files into attendance.csv and rejects.csv, chunk by chunk.

Attendance dates never interact (a record's identity and a row's identity both hold the date), so
each chunk of the window is transformed on its own and appended: memory stays bounded by a chunk.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
from airflow.sdk import ObjectStoragePath

from clever_attendance.contracts import Counts, Freshness, Manifest, Staged, Window
from clever_attendance.errors import PipelineBug
from clever_attendance.pipeline import mirror, staged_csv, staging
from clever_attendance.pipeline.config import District
from clever_attendance.pipeline.schemas import check_csv
from clever_attendance.pipeline.transform import SCHOOL_DAY_COLUMNS, transform


def transform_staged(district: District, manifest: Manifest) -> Staged:
    """Write the CSV and its rejects beside the raw files; return paths and counts (no student data)."""
    started = time.monotonic()
    _use_jemalloc()
    folder = ObjectStoragePath(manifest.folder)
    roster = staged_csv.read_roster(lambda name: (folder / f"{name}.csv").open("rb"))
    csv_path, rejects_path = folder / "attendance.csv", folder / "rejects.csv"
    counts = Counts()
    stamps, school_days, keys = [], [], {}
    with (staging.open_private(csv_path) as out, staging.open_private(rejects_path) as rejected,
          ThreadPoolExecutor(max_workers=1) as checker):
        for n, raw_file in enumerate(manifest.raw_files):
            chunk = Window.parse(ObjectStoragePath(raw_file).stem.removeprefix("raw_"))
            with ObjectStoragePath(raw_file).open("rb") as f:
                result = transform(staged_csv.read_raw(f), roster, district, chunk.start, chunk.end)
            # the CSV failing its own schema is our bug, not Clever's: it stops the task before any upload.
            # Checked while it is written: both are mostly Arrow work, which runs on the second core.
            checked = checker.submit(check_csv, result.csv)
            staged_csv.write_frame(result.csv, out, header=n == 0)
            staged_csv.write_frame(result.rejects, rejected, header=n == 0)
            checked.result()
            digests = {iso_date(day): digest for day, digest in mirror.digests(result.csv, "Att_Date").items()}
            days = {day: replace(found, digest=digests.get(day)) for day, found in result.counts.days.items()}
            keys.update({iso_date(day): found for day, found in mirror.identities(result.csv, "Att_Date").items()})
            counts = counts.plus(replace(result.counts, days=days))  # chunks hold whole dates
            stamps.append(result.stamps)
            school_days.append(result.school_days)
    if counts.read != manifest.records:
        raise PipelineBug(f"district {district.slug}: extract staged {manifest.records} records, "
                          f"transform read {counts.read}")  # nothing may be lost between steps
    school_days_path = folder / "school_days.csv"
    with staging.open_private(school_days_path) as out:
        staged_csv.write_frame(pd.concat(school_days, ignore_index=True) if school_days else
                               pd.DataFrame(columns=SCHOOL_DAY_COLUMNS), out, header=True)
    identities_path = folder / "identities.npz"  # hashes: what the ledger's delivered_keys gains once posted
    with staging.open_private(identities_path) as out:
        np.savez(out, **keys)
    return Staged(str(csv_path), str(rejects_path), str(school_days_path), str(identities_path), counts,
                  freshness(np.concatenate(stamps), manifest.previous_sync), round(time.monotonic() - started, 2))


def iso_date(csv_date: str) -> str:
    """The CSV's Att_Date (MM/DD/YYYY) as YYYY-MM-DD."""
    month, day, year = csv_date.split("/")
    return f"{year}-{month}-{day}"


def _use_jemalloc() -> None:
    """Arrow's jemalloc pool for this task's process, unless ARROW_DEFAULT_MEMORY_POOL chose one.

    pyarrow's default on Linux, mimalloc, hands freed pages back to the kernel and faults them in again:
    on the benchmark machine a third of the transform's time went to the kernel that way.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without jemalloc keeps its default
        pass


def freshness(stamps: np.ndarray, since: str | None) -> Freshness:
    """When the records this run brings were last modified in Clever: those newer than the previous
    successful upload's last_attendance_sync (all of them on a first run). Latency is measured on these:
    re-sending unchanged rows of the lookback days says nothing about how fast new attendance arrives."""
    if since:
        stamps = stamps[stamps > int(datetime.fromisoformat(since).timestamp() * 1e6)]
    if not len(stamps):
        return Freshness()
    oldest, p05, p50 = np.percentile(stamps, [0, 5, 50], method="lower")
    return Freshness(int(len(stamps)), _iso(oldest), _iso(p05), _iso(p50))


def _iso(microseconds: int) -> str:
    return datetime.fromtimestamp(int(microseconds) / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
