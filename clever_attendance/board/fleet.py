"""Which districts a page of the board shows: those that need attention first, then the others; found by a search
of their names and slugs on the server, a page at a time."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from clever_attendance.ledger.read import Standing
from clever_attendance.pipeline.config import District, Fleet
from clever_attendance.settings import BOARD_PAGE_SIZE

# what needs attention, most urgent first: its name in the query string → what the board says, and why
STATES = {
    "left-out": ("left out", "the districts file has a mistake in its entry: it is in no DAG until fixed"),
    "failed": ("failed", "a date of the board's school days failed, as it stands"),
    "held": ("held", "a date waits for a person's decision on a hold of the data guard"),
    "late": ("late", "a Clever sync has waited longer than the district's latency_sla_minutes for Safety Shield"),
    "stale": ("stale", "Clever has not synced the district since before the last school day, or not at all in the "
                       "board's school days"),
    "corrections": ("corrections pending", "Safety Shield holds records that Clever no longer does, on the board's "
                                           "school days: ask Safety Shield to remove them"),
}
SEARCH_MAX = 64  # characters of a search
SEARCH = re.compile(r"[\w '.,&()/-]*")  # what a district's name or slug holds; a search of anything else is refused
PAGE = re.compile(r"[1-9][0-9]{0,5}")


class QueryError(ValueError):
    """A query string the board does not read."""


@dataclass(frozen=True)
class Query:
    """What a page of the board asks for: a search, a state of STATES, a page (all optional)."""

    search: str = ""
    state: str = ""
    page: int = 1


def parse(values: Callable[[str], list[str]]) -> Query:
    """The board's query string (`values`: a parameter's values), read strictly: each parameter at most once, a
    search of at most SEARCH_MAX letters, digits, spaces and ' . , & ( ) / -, a state of STATES, a page number."""
    given = {}
    for name in ("q", "state", "page"):
        found = values(name)
        if len(found) > 1:
            raise QueryError(f"the parameter {name} is given {len(found)} times")
        given[name] = found[0] if found else ""
    if len(given["q"]) > SEARCH_MAX:
        raise QueryError(f"a search is at most {SEARCH_MAX} characters")
    search = " ".join(given["q"].split())
    if not SEARCH.fullmatch(search):
        raise QueryError("a search holds letters, digits, spaces and ' . , & ( ) / - only")
    if given["state"] and given["state"] not in STATES:
        raise QueryError(f"state is one of {', '.join(STATES)}")
    if given["page"] and not PAGE.fullmatch(given["page"]):
        raise QueryError("page is a page number")
    return Query(search, given["state"], int(given["page"] or 1))


@dataclass(frozen=True)
class Entry:
    """A district of the districts file, or an entry left out of it, and what about it needs attention."""

    slug: str  # a left-out entry's name: its slug when that reads as one, else its place in the file
    name: str
    attention: tuple[str, ...]  # of STATES, most urgent first
    district: District | None = None  # None: left out
    error: str = ""  # why it is left out

    def rank(self) -> tuple[int, str]:
        """The most urgent state first, the districts that need nothing last; by slug within each."""
        return (list(STATES).index(self.attention[0]) if self.attention else len(STATES), self.slug)

    def matches(self, search: str) -> bool:
        words = search.casefold()
        return words in self.slug.casefold() or words in " ".join(self.name.split()).casefold()


@dataclass(frozen=True)
class View:
    """A page of the board: its entries, and how many the search, each state and the fleet hold."""

    query: Query  # its page within `pages`
    shown: list[Entry]
    first: int  # the place of its first entry among those found, from 1
    found: int  # entries the search and state select
    total: int  # entries of the districts file, left out ones included
    counts: dict[str, int]  # entries in each state of STATES, over the fleet
    pages: int


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def attention(district: District, stands: Standing, holds: int, now: datetime, last_school_day: str | None
              ) -> tuple[str, ...]:
    """The states of a district that need attention, most urgent first. `last_school_day`: the newest date before
    today on which any district had attendance (a weekend or a holiday makes no district stale)."""
    minutes = stands.freshness(now) or 0.0
    stale = stands.seen is None or (last_school_day is not None and str(
        _at(stands.seen).astimezone(ZoneInfo(district.timezone)).date()) < last_school_day)
    found = {"failed": stands.failed > 0, "held": holds > 0, "late": minutes > district.latency_sla_minutes,
             "stale": stale, "corrections": stands.gone > 0}
    return tuple(state for state in STATES if found.get(state))


def ranked(fleet: Fleet, standing: dict[str, Standing], holds: dict[str, int], now: datetime,
          last_school_day: str | None) -> list[Entry]:
    """Every entry of the districts file, those that need attention first."""
    entries = [Entry(b.name, b.name, ("left-out",), error=b.error) for b in fleet.broken]
    entries += [Entry(d.slug, d.name, attention(d, standing.get(d.slug, Standing()), holds.get(d.slug, 0), now,
                                                last_school_day), d) for d in fleet.districts]
    return sorted(entries, key=Entry.rank)


def view(fleet: Fleet, standing: dict[str, Standing], holds: dict[str, int], now: datetime,
         last_school_day: str | None, query: Query) -> View:
    """The page the query asks for (the last one when it asks for a page past it)."""
    entries = ranked(fleet, standing, holds, now, last_school_day)
    chosen = [e for e in entries if (not query.state or query.state in e.attention) and e.matches(query.search)]
    pages = max(1, -(-len(chosen) // BOARD_PAGE_SIZE))
    page = min(query.page, pages)
    start = (page - 1) * BOARD_PAGE_SIZE
    return View(replace(query, page=page), chosen[start:start + BOARD_PAGE_SIZE], start + 1, len(chosen), len(entries),
                {state: sum(state in e.attention for e in entries) for state in STATES}, pages)
