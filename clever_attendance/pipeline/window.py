"""The attendance dates a run syncs: a closed range of days, in a district's or the DAG's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from clever_attendance.errors import RunInputError
from clever_attendance.settings import CLEVER_RETENTION_DAYS


@dataclass(frozen=True)
class Window:
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")

    def __str__(self) -> str:
        return f"{self.start}_{self.end}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def overlaps(self, other: Window) -> bool:
        return self.start <= other.end and other.start <= self.end

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range(self.days)]

    def chunks(self, days: int) -> list[Window]:
        """The window cut into consecutive pieces of at most `days` days."""
        out, start = [], self.start
        while start <= self.end:
            end = min(self.end, start + timedelta(days=days - 1))
            out.append(Window(start, end))
            start = end + timedelta(days=1)
        return out

    @classmethod
    def parse(cls, text: str) -> Window:
        start, _, end = text.partition("_")
        return cls(date.fromisoformat(start), date.fromisoformat(end or start))


def trailing(moment: datetime, timezone: str, lookback_days: int) -> Window:
    """Today in `timezone` at `moment`, and `lookback_days` days before it."""
    today = moment.astimezone(ZoneInfo(timezone)).date()
    return Window(today - timedelta(days=lookback_days), today)


def single_day(moment: datetime, timezone: str) -> Window:
    """The one date on which `moment` falls in `timezone`."""
    day = moment.astimezone(ZoneInfo(timezone)).date()
    return Window(day, day)


def _date(params: dict, name: str) -> date:
    value = params[name]
    if not isinstance(value, str) or len(value) != 10:  # a run's conf is anyone's: no echo of a huge value
        raise RunInputError(f"field {name!r}: {str(value)[:40]!r} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RunInputError(f"field {name!r}: {value!r} is not a date (YYYY-MM-DD)") from None


def requested(params: dict, today: date) -> Window | None:
    """The window a manual run's form asks for (one date alone means that day), or None. Bounded at both ends by
    what Clever holds: a window that ends before it starts, reaches further back than Clever keeps attendance, or
    ends after tomorrow (a district east of the DAG's time zone may be a day ahead) is refused naming the field."""
    given = [name for name in ("start_date", "end_date") if params.get(name)]
    if not given:
        return None
    start, end = (_date(params, given[0]), _date(params, given[-1]))
    if end < start:
        raise RunInputError(f"field 'end_date': {end} is before start_date {start}")
    earliest, latest = today - timedelta(days=CLEVER_RETENTION_DAYS), today + timedelta(days=1)
    if start < earliest:
        raise RunInputError(f"field {given[0]!r}: {start} is older than Clever keeps attendance "
                            f"({CLEVER_RETENTION_DAYS} days: the earliest date is {earliest})")
    if end > latest:
        raise RunInputError(f"field {given[-1]!r}: {end} is in the future: Clever holds no attendance after "
                            f"{latest}")
    return Window(start, end)
