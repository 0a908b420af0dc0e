"""The attendance dates a run syncs, in a district's or the DAG's time zone: the trailing window, the daily date, the
form's window."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from clever_attendance.contracts import RunOptions, Window
from clever_attendance.errors import RunInputError
from clever_attendance.settings import CLEVER_RETENTION_DAYS


def trailing(moment: datetime, timezone: str, lookback_days: int) -> Window:
    """Today in `timezone` at `moment`, and `lookback_days` days before it."""
    today = moment.astimezone(ZoneInfo(timezone)).date()
    return Window(today - timedelta(days=lookback_days), today)


def single_day(moment: datetime, timezone: str) -> Window:
    """The one date on which `moment` falls in `timezone`."""
    day = moment.astimezone(ZoneInfo(timezone)).date()
    return Window(day, day)


def requested(options: RunOptions, today: date) -> Window | None:
    """The window a manual run's form asks for (one date alone means that day), or None. Bounded at both ends by
    what Clever holds: a window that ends before it starts, reaches further back than Clever keeps attendance, or
    ends after tomorrow (a district east of the DAG's time zone may be a day ahead) is refused naming the field."""
    given = [(name, day) for name, day in (("start_date", options.start_date), ("end_date", options.end_date)) if day]
    if not given:
        return None
    (first, start), (last, end) = given[0], given[-1]
    if end < start:
        raise RunInputError(f"field 'end_date': {end} is before start_date {start}")
    earliest, latest = today - timedelta(days=CLEVER_RETENTION_DAYS), today + timedelta(days=1)
    if start < earliest:
        raise RunInputError(f"field {first!r}: {start} is older than Clever keeps attendance "
                            f"({CLEVER_RETENTION_DAYS} days: the earliest date is {earliest})")
    if end > latest:
        raise RunInputError(f"field {last!r}: {end} is in the future: Clever holds no attendance after {latest}")
    return Window(start, end)
