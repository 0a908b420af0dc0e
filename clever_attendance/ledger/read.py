"""What the Attendance board asks the ledger: where each district stands, its recent dates, a run's outcome."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from clever_attendance.ledger.progress import DELIVERED, NOTHING_NEW
from clever_attendance.ledger.tables import deliveries, district_days, holds, iso, rejects, run_districts
from clever_attendance.settings import DAILY

if TYPE_CHECKING:  # the ledger depends on the contracts alone
    from clever_attendance.pipeline.config import District

SCHOOL_DAYS = 30  # the board's span (its grid, sparklines, what needs attention): the last this many school days
LOOK_BACK = 120  # calendar days searched for them (a winter break and weekends fit)
RECENT = 7  # days: the corrections and dates filled the board counts
REJECT_COLUMNS = ("attendance_date", "reason", "detail", "school_id", "student_id", "section_id", "last_modified")


@dataclass(frozen=True)
class Standing:
    """Where a district stands over the board's span of school days: what ranks it on the board."""

    seen: str | None = None  # the newest Clever last_attendance_sync a run saw
    delivered: str | None = None  # the Clever sync of the newest rows Safety Shield holds
    failed: int = 0  # dates whose latest attempt failed
    gone: int = 0  # records Safety Shield holds that Clever no longer does

    def freshness(self, now: datetime) -> float | None:
        """Minutes since a Clever sync that is not yet in Safety Shield; 0 caught up; None unknown."""
        if self.seen is None:
            return None
        return 0.0 if self.delivered and self.delivered >= self.seen else _minutes(now, self.seen)


@dataclass
class DistrictLine:
    """One district's row on the board."""

    slug: str
    name: str
    last_delivered: str | None  # the newest attendance date with rows in Safety Shield
    last_sync: str | None  # the newest Clever last_attendance_sync a run saw
    freshness_min: float | None  # minutes since a Clever sync not yet in Safety Shield; 0 caught up; None unknown
    today: dict | None  # the district's today (its time zone) as it stands
    shares: list[float | None]  # reject share per school day of the grid, oldest first
    last_run: tuple[str, str] | None  # (dag_id, run_id) of the latest attempt at the district's newest date
    mirror: Mirror  # how Safety Shield keeps up with Clever's corrections and deletions


@dataclass
class Mirror:
    """A district's reconciliation, in brief."""

    last_reconciled: str | None = None  # when a reconciling run last finished comparing it (within its retention)
    corrections: int = 0  # dates posted again because their rows changed, the last RECENT days
    filled: int = 0  # dates a reconciliation posted for the first time (missed, or a new district's history)
    gone: int = 0  # records Safety Shield holds that Clever no longer does, on the dates of the board's span


def _minutes(later: datetime, earlier: str) -> float:
    return max(0.0, (later - datetime.fromisoformat(earlier.replace("Z", "+00:00"))).total_seconds() / 60)


def share(row: dict) -> float | None:
    """Rejected records over those read, of a date as it stands."""
    return row["rejected"] / row["read"] if row.get("read") else None


def school_days(db: sa.Connection, today: date, count: int = SCHOOL_DAYS) -> list[str]:
    """The last `count` dates, up to today, on which some district had attendance or a problem, oldest first."""
    found = db.execute(
        sa.select(district_days.c.attendance_date).distinct()
        .where(district_days.c.attendance_date > str(today - timedelta(days=LOOK_BACK)),
               district_days.c.attendance_date <= str(today), district_days.c.status != "no attendance")
        .order_by(district_days.c.attendance_date.desc()).limit(count))
    return sorted(r[0] for r in found)


def standings(db: sa.Connection, since: str) -> dict[str, Standing]:
    """Every district's standing over its dates from `since` on, in one aggregate: the fleet's rows are counted by
    the database, never read into Python (and the dates before `since` not at all)."""
    c = district_days.c
    found = db.execute(sa.select(c.district, sa.func.max(c.last_attendance_sync), sa.func.max(c.delivered_sync),
                                 sa.func.sum(sa.case((c.status.like("failed%"), 1), else_=0)), sa.func.sum(c.gone))
                       .where(c.attendance_date >= since).group_by(c.district))
    return {slug: Standing(seen, delivered, int(failed or 0), int(gone or 0))
            for slug, seen, delivered, failed, gone in found}


def held(db: sa.Connection) -> dict[str, int]:
    """Per district with any: its holds a person has not decided on yet."""
    found = db.execute(sa.select(holds.c.district, sa.func.count()).where(holds.c.decision.is_(None))
                       .group_by(holds.c.district))
    return {slug: count for slug, count in found}


GRID = ("status", "read", "delivered", "rejected")  # what a cell of the grid says


def grid(db: sa.Connection, dates: list[str], slugs: list[str]) -> dict[tuple[str, str], dict]:
    """Where these districts' dates stand, for the given dates: (slug, date) → its status and counts."""
    if not dates or not slugs:
        return {}
    c = district_days.c
    found = db.execute(sa.select(c.district, c.attendance_date, *(c[name] for name in GRID))
                       .where(c.district.in_(slugs), c.attendance_date.in_(dates)))
    return {(slug, day): dict(zip(GRID, values, strict=True)) for slug, day, *values in found}


def overview(db: sa.Connection, districts: list[District], now: datetime, dates: list[str],
             standing: dict[str, Standing]) -> tuple[list[DistrictLine], dict[tuple[str, str], dict]]:
    """These districts' rows, with what the ledger knows of them; and the grid's cells of their dates."""
    slugs = [d.slug for d in districts]
    c = district_days.c
    latest = sa.select(
        c.district, sa.func.max(sa.case((c.delivered > 0, c.attendance_date))).label("delivered_date"),
        sa.func.max(c.attendance_date).label("newest")).where(c.district.in_(slugs)).group_by(c.district).subquery()
    found = db.execute(sa.select(latest.c.district, latest.c.delivered_date, c.dag_id, c.run_id).join(
        district_days, sa.and_(c.district == latest.c.district, c.attendance_date == latest.c.newest)))
    known = {r.district: r for r in found}
    todays = {d.slug: str(now.astimezone(ZoneInfo(d.timezone)).date()) for d in districts}
    cells = grid(db, sorted(set(dates) | set(todays.values())), slugs)
    mirrored = mirrors(db, now, slugs)
    lines = []
    for district in districts:
        slug, row, stands = district.slug, known.get(district.slug), standing.get(district.slug, Standing())
        lines.append(DistrictLine(
            slug=slug, name=district.name, last_delivered=row.delivered_date if row else None, last_sync=stands.seen,
            freshness_min=stands.freshness(now), today=cells.get((slug, todays[slug])),
            shares=[share(cells[(slug, d)]) if (slug, d) in cells else None for d in dates],
            last_run=(row.dag_id, row.run_id) if row else None,
            mirror=replace(mirrored.get(slug, Mirror()), gone=stands.gone)))
    return lines, cells


def mirrors(db: sa.Connection, now: datetime, slugs: list[str]) -> dict[str, Mirror]:
    """Per district of these with any: its last reconciliation, and its recent corrections and dates filled."""
    since = iso(now - timedelta(days=RECENT))
    out: dict[str, Mirror] = {}
    r, d = run_districts.c, deliveries.c
    # only the daily DAG reconciles: its id, the first of the primary key, keeps the other DAGs' rows unread
    for slug, at in db.execute(sa.select(r.district, sa.func.max(r.recorded_at)).where(
            r.dag_id == DAILY, r.district.in_(slugs), r.reconciled == 1, r.state.in_((DELIVERED, NOTHING_NEW)))
            .group_by(r.district)):
        out.setdefault(slug, Mirror()).last_reconciled = at
    posted = sa.select(d.district, sa.func.sum(sa.case((d.posted == "changed", 1), else_=0)),
                       sa.func.sum(sa.case((sa.and_(d.posted == "new", d.reconciled == 1), 1), else_=0))).where(
        d.recorded_at >= since, d.district.in_(slugs), d.posted.in_(("changed", "new"))).group_by(d.district)
    for slug, changed, filled in db.execute(posted):
        found = out.setdefault(slug, Mirror())
        found.corrections, found.filled = int(changed or 0), int(filled or 0)
    return out


def _one(db: sa.Connection, slug: str, day: str) -> dict | None:
    found = db.execute(sa.select(district_days).where(district_days.c.district == slug,
                                                      district_days.c.attendance_date == day)).first()
    return dict(found._mapping) if found else None


def district_dates(db: sa.Connection, slug: str, since: date) -> list[dict]:
    """A district's dates from `since` on, newest first, each as it stands with its rejects by reason."""
    found = db.execute(sa.select(district_days).where(district_days.c.district == slug,
                                                      district_days.c.attendance_date >= str(since))
                       .order_by(district_days.c.attendance_date.desc()))
    return [{**r._mapping, "rejected_by_reason": json.loads(r.rejected_by_reason or "{}")} for r in found]


def rejects_csv(db: sa.Connection, slug: str, day: str) -> str | None:
    """The rejects of a district's date, from the upload that stands (Clever ids only), as CSV; None when the
    ledger no longer holds them (past rejects_retention_days) or the date was never delivered."""
    stands = _one(db, slug, day)
    if not stands or not stands.get("delivered_run_id"):
        return None
    r = rejects.c
    found = db.execute(sa.select(*(r[name] for name in REJECT_COLUMNS)).where(
        r.district == slug, r.attendance_date == day, r.dag_id == stands["delivered_dag_id"],
        r.run_id == stands["delivered_run_id"]).order_by(r.reason, r.school_id, r.student_id, r.last_modified)).all()
    if not found and stands.get("rejected"):
        return None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REJECT_COLUMNS)
    writer.writerows([spreadsheet_safe(value) for value in row] for row in found)
    return out.getvalue()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may run as a formula (OWASP's list)


def spreadsheet_safe(value: str | None) -> str | None:
    """A downloaded cell that no spreadsheet runs: Clever's values are anyone's, so one that could start a formula
    is quoted as text (a leading `'`)."""
    return f"'{value}" if value and value.startswith(FORMULA_STARTS) else value


def run_outcome(db: sa.Connection, dag_id: str, run_id: str) -> list[dict]:
    """A run's districts and dates as it recorded them, by district then date."""
    found = db.execute(sa.select(deliveries).where(deliveries.c.dag_id == dag_id, deliveries.c.run_id == run_id)
                       .order_by(deliveries.c.district, deliveries.c.attendance_date))
    return [{**r._mapping, "rejected_by_reason": json.loads(r.rejected_by_reason or "{}")} for r in found]


def _holds(where) -> sa.Select:
    return sa.select(holds).where(where).order_by(holds.c.held_at, holds.c.district, holds.c.attendance_date)


def waiting(db: sa.Connection, slugs: list[str]) -> list[dict]:
    """These districts' holds a person has not decided on yet, oldest first."""
    return [dict(r._mapping) for r in db.execute(_holds(sa.and_(holds.c.decision.is_(None),
                                                                 holds.c.district.in_(slugs))))]


def run_holds(db: sa.Connection, dag_id: str, run_id: str) -> list[dict]:
    """The holds a run made, or decided (a review run)."""
    made = sa.and_(holds.c.dag_id == dag_id, holds.c.run_id == run_id)
    return [dict(r._mapping) for r in db.execute(_holds(sa.or_(made, holds.c.review_run_id == run_id)))]

