"""The extract step: one district's roster lookups and attendance from Clever into the run's staging folder."""

from __future__ import annotations

import logging
import time
from collections import Counter

from airflow.sdk import ObjectStoragePath

from clever_attendance.errors import CleverContractError
from clever_attendance.hooks.clever import CleverHook
from clever_attendance.pipeline import records, staging
from clever_attendance.pipeline.config import District
from clever_attendance.pipeline.window import Window

log = logging.getLogger(__name__)


class NothingNew(Exception):  # noqa: N818 - not an error: the district is skipped
    """Clever's last_attendance_sync has not moved since the last successful upload of this window."""


def one_per_id(rows: list[dict], name: str, slug: str) -> list[dict]:
    """One roster object per Clever id, the last served winning: the lookups need unique ids, and a list
    that changed while it was paged through can serve an object twice."""
    latest = {row["id"]: row for row in rows}
    if len(latest) < len(rows):
        log.warning("Clever district %s: %d %s served more than once; the last version of each is used",
                    slug, len(rows) - len(latest), name)
    return list(latest.values())


def school_order(schools: list[str], students: list[dict], sections: list[dict]) -> list[str]:
    """The largest schools first (students, times periods where attendance is per period), so that the
    parallel reads end together instead of waiting on one big school read alone at the end."""
    size = Counter(s["roles"]["student"]["school"] for s in students if (s.get("roles") or {}).get("student"))
    periods = Counter(s["school"] for s in sections)
    return sorted(schools, key=lambda s: -size[s] * max(1, min(periods[s], 8)))


def extract(district: District, window: Window, folder: ObjectStoragePath, receipt: dict | None,
            force: bool, chunk_days: int) -> dict:
    """Stage the roster tables and one raw file per chunk of the window; return the manifest (no student data)."""
    started = time.monotonic()
    hook = CleverHook(district.clever_district_id, district.clever_conn_id)
    sync = hook.get_district().get("last_attendance_sync")
    if receipt and not force and sync and receipt.get("last_attendance_sync") == sync:
        raise NothingNew(f"Clever district {district.slug}: nothing new since last_attendance_sync {sync}; "
                         f"window {window} was uploaded at {receipt.get('completedAt')}")
    lists = {"schools": hook.iter_schools, "students": hook.iter_students, "sections": hook.iter_sections,
             "courses": hook.iter_courses}
    roster = {name: one_per_id(list(read()), name, district.slug) for name, read in lists.items()}
    shared = {s["id"] for s in roster["schools"]}
    wanted = list(district.schools or sorted(shared))
    missing = sorted(set(wanted) - shared)
    if missing:
        raise CleverContractError(district.clever_district_id, "reading the schools",
                                  f"configured schools not shared by Clever: {', '.join(missing)}")
    tables = records.write_roster(roster, lambda name: staging.open_private(folder / f"{name}.csv", "w"))
    order = school_order(wanted, roster["students"], roster["sections"])
    raw_files, read = [], 0
    for chunk in window.chunks(chunk_days):
        path = folder / f"raw_{chunk}.csv"
        with staging.open_private(path, "w") as out:
            schools = hook.iter_district_attendance(order, chunk.start, chunk.end)
            read += records.write_records((r for school in schools for r in school), records.CLEVER_FIELDS, out)
        raw_files.append(str(path))
    hook.log_totals()
    return {
        "folder": str(folder), "window": str(window), "raw_files": raw_files, "records": read,
        "schools": len(wanted), "roster": tables, "last_attendance_sync": sync,
        "clever": hook.stats.as_dict(), "seconds": round(time.monotonic() - started, 2),
    }
