"""What the runs ask the ledger of what Safety Shield holds: a date's digest, the Clever sync a window was read at."""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa

from clever_attendance.contracts import Status, Window
from clever_attendance.ledger.tables import district_days

BATCH = 500  # districts per query: bounded IN lists


def digests(db: sa.Connection, slug: str, window: Window) -> dict[str, str]:
    """The digest of the rows Safety Shield holds for each of a district's dates in the window."""
    d = district_days.c
    found = db.execute(sa.select(d.attendance_date, d.delivered_digest).where(
        d.district == slug, d.attendance_date >= str(window.start), d.attendance_date <= str(window.end),
        d.delivered_digest.is_not(None)))
    return dict(found.all())


def _settled() -> sa.ColumnElement[bool]:
    """A date whose last run read it and left it where it should be: delivered (`contracts.delivers`), unchanged,
    without attendance, or held for a person or by one (not failed, skipped or a dry run)."""
    s = district_days.c.status
    held = (Status.HELD, Status.REJECTED, Status.NO_DECISION)  # a person's name may follow: "held: rejected by ana"
    return sa.or_(s.like(f"{Status.UPLOADED}%"), s == Status.NO_ATTENDANCE, *(s.like(f"{h}%") for h in held))


def read_at(db: sa.Connection, windows: dict[str, Window]) -> dict[str, str]:
    """Per district, the Clever sync at which every date of its window was read and settled; a district with a date
    not settled is left out. A window read at the sync Clever holds now has nothing new."""
    d = district_days.c
    by_window: dict[Window, list[str]] = defaultdict(list)
    for slug, window in windows.items():
        by_window[window].append(slug)
    out = {}
    for window, slugs in by_window.items():
        for n in range(0, len(slugs), BATCH):
            found = db.execute(
                sa.select(d.district, sa.func.count(), sa.func.min(d.last_attendance_sync),
                          sa.func.count(d.last_attendance_sync))
                .where(d.district.in_(slugs[n:n + BATCH]), d.attendance_date >= str(window.start),
                       d.attendance_date <= str(window.end), _settled())
                .group_by(d.district))
            out.update({slug: sync for slug, dates, sync, synced in found if dates == synced == window.days})
    return out


def last_delivered_sync(db: sa.Connection, slug: str) -> str | None:
    """The newest Clever sync any of the district's delivered dates was built from."""
    return db.execute(sa.select(sa.func.max(district_days.c.delivered_sync))
                      .where(district_days.c.district == slug)).scalar()
