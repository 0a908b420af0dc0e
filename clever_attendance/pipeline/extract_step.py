"""The extract step: one district's roster lookups and attendance from Clever into the run's staging folder."""

from __future__ import annotations

import io
import logging
import re
import time
from collections import Counter
from datetime import datetime

from airflow.sdk import ObjectStoragePath

from clever_attendance.contracts import Manifest, Window
from clever_attendance.errors import CleverContractError
from clever_attendance.hooks.clever import CleverHook
from clever_attendance.pipeline import staged_csv, staging
from clever_attendance.pipeline.config import District
from clever_attendance.pipeline.schemas import CLEVER_ID, CLEVER_TIMESTAMP

log = logging.getLogger(__name__)


class NothingNew(Exception):  # noqa: N818 - not an error: the district is skipped
    """Clever's last_attendance_sync has not moved since the last successful upload of this window."""


def one_per_id(rows: list, name: str, slug: str) -> list[dict]:
    """One roster object per Clever id, the last served winning: the lookups need unique ids, and a list
    that changed while it was paged through can serve an object twice. An object without a Clever id (or
    not an object) is left out: no record can name it, so its records are rejected as unknown."""
    usable = [row for row in rows if isinstance(row, dict) and _is_id(row.get("id"))]
    if len(usable) < len(rows):
        log.warning("Clever district %s: %d %s without a valid Clever id left out", slug, len(rows) - len(usable),
                    name)
    latest = {row["id"]: row for row in usable}
    if len(latest) < len(usable):
        log.warning("Clever district %s: %d %s served more than once; the last version of each is used",
                    slug, len(usable) - len(latest), name)
    return list(latest.values())


def _is_id(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(CLEVER_ID, value) is not None


def _school_of(student: dict) -> object:
    roles = student.get("roles")
    role = roles.get("student") if isinstance(roles, dict) else None
    return role.get("school") if isinstance(role, dict) else None


def school_order(schools: list[str], students: list[dict], sections: list[dict]) -> list[str]:
    """The largest schools first (students, times periods where attendance is per period), so that the
    parallel reads end together instead of waiting on one big school read alone at the end."""
    size = Counter(school for s in students if isinstance(school := _school_of(s), str))
    periods = Counter(school for s in sections if isinstance(school := s.get("school"), str))
    return sorted(schools, key=lambda s: -size[s] * max(1, min(periods[s], 8)))


def last_sync(value: object, slug: str) -> str | None:
    """Clever's last_attendance_sync if it is a time; else None (unknown: the district is synced)."""
    if value is None or _is_time(value):
        return value
    log.warning("Clever district %s: last_attendance_sync is not a time; read as unknown", slug)
    return None


def _is_time(value: object) -> bool:
    if not isinstance(value, str) or not re.fullmatch(CLEVER_TIMESTAMP, value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _text(path: ObjectStoragePath) -> io.TextIOWrapper:
    """A staging file for the csv module: UTF-8 whatever the locale, its line ends left to the writer."""
    return io.TextIOWrapper(staging.open_private(path, "wb"), encoding="utf-8", newline="")


def extract(district: District, window: Window, folder: ObjectStoragePath, read_at: str | None,
            force: bool, chunk_days: int, rate_share: float = 1.0) -> Manifest:
    """Stage the roster tables and one raw file per chunk of the window; return what was staged.
    `read_at`: the Clever sync every date of the window was last read at, if any (then nothing is new at it);
    `rate_share`: of the connection's request rate, what this read may use (a reconciliation leaves the rest)."""
    started = time.monotonic()
    hook = CleverHook(district.clever_district_id, district.clever_conn_id, rate_share)
    sync = last_sync(hook.get_district().get("last_attendance_sync"), district.slug)
    if read_at and not force and sync == read_at:
        raise NothingNew(f"Clever district {district.slug}: nothing new since last_attendance_sync {sync}, at "
                         f"which every date of window {window} was read")
    lists = {"schools": hook.iter_schools, "students": hook.iter_students, "sections": hook.iter_sections,
             "courses": hook.iter_courses}
    roster = {name: one_per_id(list(read()), name, district.slug) for name, read in lists.items()}
    shared = {s["id"] for s in roster["schools"]}
    wanted = list(district.schools or sorted(shared))
    missing = sorted(set(wanted) - shared)
    if missing:
        raise CleverContractError(district.clever_district_id, "reading the schools",
                                  f"configured schools not shared by Clever: {', '.join(missing)}")
    tables = staged_csv.write_roster(roster, lambda name: _text(folder / f"{name}.csv"))
    order = school_order(wanted, roster["students"], roster["sections"])
    raw_files, read = [], 0
    for chunk in window.chunks(chunk_days):
        path = folder / f"raw_{chunk}.csv"
        with _text(path) as out:
            schools = hook.iter_district_attendance(order, chunk.start, chunk.end)
            staged = (staged_csv.staged_record(r) for school in schools for r in school)
            read += staged_csv.write_records(staged, staged_csv.RAW_FIELDS, out)
        raw_files.append(str(path))
    hook.log_totals()
    return Manifest(folder=str(folder), window=window, raw_files=tuple(raw_files), records=read, schools=len(wanted),
                    roster=tables, last_attendance_sync=sync, clever=hook.stats.as_dict(),
                    seconds=round(time.monotonic() - started, 2))
