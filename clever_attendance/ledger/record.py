"""What a run writes to the ledger, in one transaction that first removes what the run wrote before."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from clever_attendance.contracts import (
    SKIPPED,
    Delivery,
    DistrictReport,
    Manifest,
    Posted,
    Status,
    Transformed,
    Window,
    delivers,
)
from clever_attendance.ledger.tables import (
    COUNTS,
    delivered_keys,
    deliveries,
    district_days,
    iso,
    rejects,
    run_districts,
    school_days,
)
from clever_attendance.settings import CLEVER_RETENTION_DAYS


def pack(keys: np.ndarray) -> bytes:
    """Sorted hashes as the ledger stores them (`delivered_keys.hashes`): deltas, compressed."""
    return zlib.compress(np.diff(keys, prepend=np.uint64(0)).astype("<u8").tobytes())


def unpack(stored: bytes | None) -> np.ndarray:
    return np.cumsum(np.frombuffer(zlib.decompress(stored), "<u8"), dtype=np.uint64) if stored else \
        np.empty(0, np.uint64)


@dataclass
class RunEntry:
    """One run's ledger rows: per district and date, and the rejects and school days of its districts."""

    dag_id: str
    run_id: str
    run_type: str
    deliveries: list[dict] = field(default_factory=list)
    rejects: list[pd.DataFrame] = field(default_factory=list)
    school_days: list[tuple[str, list[str], pd.DataFrame]] = field(default_factory=list)  # district, dates, rows
    identities: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # district: date: what was read
    reconciled: bool = False

    def add(self, row: DistrictReport, window: Window, manifest: Manifest | None = None,
            transformed: Transformed | None = None, delivery: Delivery | None = None, *, sync: str | None = None,
            rejected: pd.DataFrame | None = None, school_days: pd.DataFrame | None = None,
            identities: Mapping[str, np.ndarray] | None = None) -> None:
        """A district of the run: its report row and window, what its tasks handed on, what the transform staged
        (the rejected records, school days and rows' identities by date), and the Clever sync the check read for a
        district it skipped."""
        dates = district_dates(row, window, manifest, transformed, delivery, sync)
        self.deliveries += dates
        read = [d["attendance_date"] for d in dates if counts_gone(d)]
        if identities is not None and read:
            self.identities[row.district] = {day: identities[day] for day in read if day in identities}
        if rejected is not None:
            self.rejects.append(rejected.drop(columns=[c for c in rejected if c not in rejects.c]).assign(
                district=row.district))
        if school_days is not None and row.status in (Status.UPLOADED, Status.HELD):  # what reached Safety Shield
            held = set(row.held)
            dates = [str(day) for day in window.dates() if str(day) not in held]
            self.school_days.append((row.district, dates, school_days[~school_days["attendance_date"].isin(held)]))


def district_dates(row: DistrictReport, window: Window, manifest: Manifest | None, transformed: Transformed | None,
                   delivery: Delivery | None, sync: str | None = None) -> list[dict]:
    """One row per attendance date of the district's window: its status, counts, import and timings."""
    days = transformed.staged.counts.days if transformed else {}
    out = []
    for day in window.dates():
        counts = days.get(str(day))
        # held, unchanged: the district's other dates were uploaded
        status = Status.UPLOADED if row.status in (Status.HELD, Status.UNCHANGED) else row.status
        posted = row.mirror.get(str(day))  # new, changed or unchanged
        if status == Status.UPLOADED and not (counts and counts.delivered):
            status = Status.NO_ATTENDANCE  # the district's file had none of this date
        elif status == Status.UPLOADED and posted == Posted.UNCHANGED:
            status = Status.UNCHANGED  # Safety Shield holds these rows already: not posted
        held = row.held.get(str(day))
        if held and status != Status.DRY_RUN:
            status = Status.after_guard(held.action, held.decided_by)
        out.append({
            "district": row.district, "attendance_date": str(day), "window": str(window), "status": status,
            **{name: (getattr(counts, name) if counts else 0) if transformed else None for name in COUNTS},
            "rejected_by_reason": json.dumps(counts.rejected_by_reason if counts else {}) if transformed else None,
            "import_ids": delivery.import_ids if delivery else None,
            "completed_at": delivery.completed_at if delivery else None,
            "last_attendance_sync": (manifest and manifest.last_attendance_sync) or sync,
            "digest": counts and counts.digest, "posted": posted if status == Status.UPLOADED else None,
            **{f"latency_{name}": getattr(row.latency, name, None) for name in ("p50", "p95", "max")},
            "extract_s": row.extract_s, "transform_s": row.transform_s, "upload_s": row.upload_s,
        })
    return out


def write(engine: sa.Engine, entry: RunEntry, retention_days: int, now: datetime | None = None) -> None:
    """Replace the run's rows; replace the school days its uploads delivered; settle where each date stands;
    drop rejects (and the rows of skips, and runs' districts) past retention."""
    now = now or datetime.now(UTC)
    stamp = iso(now)
    run = {"dag_id": entry.dag_id, "run_id": entry.run_id}
    recorded = [{c: given.get(c) for c in deliveries.c.keys()} for given in
                ({**run, "run_type": entry.run_type, "recorded_at": stamp, "reconciled": int(entry.reconciled), **row}
                 for row in entry.deliveries)]
    with engine.begin() as db:
        count_gone(db, recorded, entry.identities)
        for table in (deliveries, rejects):
            db.execute(table.delete().where(table.c.dag_id == entry.dag_id, table.c.run_id == entry.run_id))
        if recorded:
            db.execute(deliveries.insert(), recorded)
        for frame in entry.rejects:
            if len(frame):
                db.execute(rejects.insert(), frame.assign(**run, recorded_at=stamp).to_dict("records"))
        for district, dates, frame in entry.school_days:
            db.execute(school_days.delete().where(school_days.c.district == district,
                                                  school_days.c.attendance_date.in_(dates)))
            if len(frame):
                db.execute(school_days.insert(), frame.assign(district=district, **run, recorded_at=stamp)
                           .to_dict("records"))
        settle(db, recorded)
        cutoff = iso(now - timedelta(days=retention_days))
        db.execute(rejects.delete().where(rejects.c.recorded_at < cutoff))
        db.execute(deliveries.delete().where(deliveries.c.status.in_(SKIPPED), deliveries.c.recorded_at < cutoff))
        db.execute(run_districts.delete().where(run_districts.c.recorded_at < cutoff))
        kept_from = str(now.date() - timedelta(days=CLEVER_RETENTION_DAYS + 7))  # Clever no longer holds older dates
        db.execute(delivered_keys.delete().where(delivered_keys.c.attendance_date < kept_from))


def counts_gone(row: dict) -> bool:
    """Does the run's row of a date say what Clever holds of it now: its rows read and posted whole, or none found?
    (A date unchanged, held, trimmed by a person, failed or previewed leaves its count as it was.)"""
    return row["status"] == Status.NO_ATTENDANCE or (row["status"] == Status.UPLOADED
                                                      and row.get("posted") in (Posted.NEW, Posted.CHANGED))


def count_gone(db: sa.Connection, recorded: list[dict], read: dict[str, dict[str, np.ndarray]]) -> None:
    """Per date that `counts_gone`: the identities Safety Shield holds that Clever's rows lack (`gone`), and what
    Safety Shield holds once they are posted (`delivered_keys`: what it held, and the rows)."""
    k = delivered_keys.c
    counted: dict[str, list[dict]] = {}
    for row in recorded:
        if row["district"] in read and counts_gone(row):
            counted.setdefault(row["district"], []).append(row)
    for slug, rows in counted.items():
        identities = read[slug]
        held = dict(db.execute(sa.select(k.attendance_date, k.hashes).where(
            k.district == slug, k.attendance_date.in_([r["attendance_date"] for r in rows]))).all())
        for row in rows:
            day = row["attendance_date"]
            old, new = unpack(held.get(day)), identities.get(day, np.empty(0, np.uint64))
            row["gone"] = int(np.setdiff1d(old, new, assume_unique=True).size)
            if row["status"] == Status.NO_ATTENDANCE:
                continue  # nothing posted: Safety Shield holds what it held
            now = np.union1d(old, new)
            db.execute(delivered_keys.delete().where(k.district == slug, k.attendance_date == day))
            db.execute(delivered_keys.insert().values(district=slug, attendance_date=day, hashes=pack(now),
                                                      count=int(now.size)))


def standing(old: dict | None, row: dict) -> dict | None:
    """Where a district's date stands after a recorded row: None when the row changes nothing of it."""
    if row["status"] == Status.DRY_RUN or (row["status"] in SKIPPED and old):
        return None  # a skip changes nothing (nothing new, or another run syncs the district)
    new = dict(old or {}, district=row["district"], attendance_date=row["attendance_date"])
    seen = [s for s in ((old or {}).get("last_attendance_sync"), row.get("last_attendance_sync")) if s]
    new["last_attendance_sync"] = max(seen) if seen else None
    status = row["status"]
    if status == Status.UNCHANGED:  # Safety Shield holds the rows as they are, from the upload delivered_* name
        status = old["status"] if old and delivers(old["status"]) else Status.UPLOADED  # as a person approved, say
    new.update(status=status, dag_id=row["dag_id"], run_id=row["run_id"], recorded_at=row["recorded_at"])
    if delivers(row["status"]):
        new.update({name: row.get(name) for name in (*COUNTS, "rejected_by_reason", "completed_at")},
                   delivered_dag_id=row["dag_id"], delivered_run_id=row["run_id"],
                   delivered_sync=row.get("last_attendance_sync"), delivered_digest=row.get("digest"))
        if row.get("gone") is not None:  # counted at this read; else as the date's last posted read counted it
            new["gone"] = row["gone"]
    return new


def settle(db: sa.Connection, recorded: list[dict]) -> None:
    """Bring the recorded dates' rows of `district_days` up to date, in the order the rows were recorded."""
    keys = sorted({(row["district"], row["attendance_date"]) for row in recorded})
    if not keys:
        return
    key = sa.tuple_(district_days.c.district, district_days.c.attendance_date)
    now: dict[tuple, dict] = {}
    for n in range(0, len(keys), 500):  # bounded IN lists
        found = db.execute(sa.select(district_days).where(key.in_(keys[n:n + 500])))
        now.update({(r.district, r.attendance_date): dict(r._mapping) for r in found})
    changed: dict[tuple, dict] = {}
    for row in sorted(recorded, key=lambda r: r["recorded_at"]):
        at = (row["district"], row["attendance_date"])
        new = standing(now.get(at), row)
        if new is not None:
            now[at] = changed[at] = new
    done = sorted(changed)
    for n in range(0, len(done), 500):
        db.execute(district_days.delete().where(key.in_(done[n:n + 500])))
    if changed:
        columns = district_days.c.keys()
        db.execute(district_days.insert(), [{c: row.get(c) for c in columns} for row in changed.values()])


def replay_district_days(db: sa.Connection) -> None:
    """Where each date stands, made again from the whole history (a schema upgrade's fill)."""
    history = [dict(r._mapping) for r in db.execute(sa.select(deliveries).order_by(deliveries.c.recorded_at))]
    settle(db, history)
