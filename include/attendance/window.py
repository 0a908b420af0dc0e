"""The attendance dates a run syncs: a closed range of days, in a district's or the DAG's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


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
