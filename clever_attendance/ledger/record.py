"""What a run writes to the ledger, in one transaction that first removes what the run wrote before."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from clever_attendance.ledger.schema import deliveries, rejects, school_days
from clever_attendance.pipeline.window import Window

COUNTS = ("read", "delivered", "rejected", "superseded")


@dataclass
class RunEntry:
    """One run's ledger rows: per district and date, and the rejects and school days of its districts."""

    dag_id: str
    run_id: str
    run_type: str
    deliveries: list[dict] = field(default_factory=list)
    rejects: list[pd.DataFrame] = field(default_factory=list)
    school_days: list[tuple[str, list[str], pd.DataFrame]] = field(default_factory=list)  # district, dates, rows

    def add(self, row: dict, window: str, pulled: dict, rejects_csv: str | None = None,
            school_days_csv: str | None = None) -> None:
        """A district of the run: its report row, window and tasks' XComs, and the staged files to keep."""
        self.deliveries += district_dates(row, window, pulled)
        if rejects_csv:
            found = pd.read_csv(rejects_csv, dtype=str, keep_default_na=False)
            self.rejects.append(found.drop(columns=[c for c in found if c not in rejects.c]).assign(
                district=row["district"]))
        if school_days_csv and row["status"] == "uploaded":
            dates = [str(day) for day in Window.parse(window).dates()]
            self.school_days.append((row["district"], dates, pd.read_csv(school_days_csv, dtype={"school_id": str,
                                     "school_number": str, "attendance_date": str}, keep_default_na=False)))


def district_dates(row: dict, window: str, pulled: dict) -> list[dict]:
    """One row per attendance date of the district's window: its status, counts, import and timings."""
    extract, transform, upload = (pulled.get(step) or {} for step in ("extract", "transform", "upload"))
    days = transform.get("counts", {}).get("days", {})
    late = row.get("latency") or {}
    out = []
    for day in Window.parse(window).dates():
        counts = days.get(str(day), {})
        status = row["status"]
        if status == "uploaded" and not counts.get("delivered"):
            status = "no attendance"  # the district's file had none of this date
        out.append({
            "district": row["district"], "attendance_date": str(day), "window": window, "status": status,
            **{name: counts.get(name, 0) if transform else None for name in COUNTS},
            "rejected_by_reason": json.dumps(counts.get("rejected_by_reason", {})) if transform else None,
            "import_ids": ",".join(u["uploadId"] for u in upload.get("uploads", [])) or None,
            "completed_at": upload.get("completedAt"), "last_attendance_sync": extract.get("last_attendance_sync"),
            **{f"latency_{name}": late.get(name) for name in ("p50", "p95", "max")},
            **{f"{step}_s": row.get(f"{step}_s") for step in ("extract", "transform", "upload")},
        })
    return out


def write(engine: sa.Engine, entry: RunEntry, retention_days: int, now: datetime | None = None) -> None:
    """Replace the run's rows; replace the school days its uploads delivered; drop rejects past retention."""
    now = now or datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    run = {"dag_id": entry.dag_id, "run_id": entry.run_id}
    with engine.begin() as db:
        for table in (deliveries, rejects):
            db.execute(table.delete().where(table.c.dag_id == entry.dag_id, table.c.run_id == entry.run_id))
        if entry.deliveries:
            db.execute(deliveries.insert(), [{**run, "run_type": entry.run_type, "recorded_at": stamp, **row}
                                             for row in entry.deliveries])
        for frame in entry.rejects:
            if len(frame):
                db.execute(rejects.insert(), frame.assign(**run, recorded_at=stamp).to_dict("records"))
        for district, dates, frame in entry.school_days:
            db.execute(school_days.delete().where(school_days.c.district == district,
                                                  school_days.c.attendance_date.in_(dates)))
            if len(frame):
                db.execute(school_days.insert(), frame.assign(district=district, **run, recorded_at=stamp)
                           .to_dict("records"))
        cutoff = (now - timedelta(days=retention_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        db.execute(rejects.delete().where(rejects.c.recorded_at < cutoff))
