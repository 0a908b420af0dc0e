"""The board's HTML, rendered on the server from the ledger (Jinja templates beside this module)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup, escape

from clever_attendance.board.fleet import SEARCH_MAX, STATES, Query, View
from clever_attendance.ledger.read import DistrictLine, share
from clever_attendance.pipeline.config import District, Fleet
from clever_attendance.settings import REVIEW

SPARK_WIDTH, SPARK_HEIGHT = 120, 22
STATE_TONES = {"left-out": "failed", "failed": "failed", "held": "held", "late": "held", "stale": "quiet",
               "corrections": "dry"}  # a state of what needs attention → its badge's colour class


@dataclass(frozen=True)
class Links:
    """Where the board's pages and Airflow's own live, as seen from the browser."""

    board: str  # the board's root path, e.g. /attendance-board
    airflow: str  # the UI's root path ("" at the server's root)

    def page(self, query: Query, **changes) -> str:
        """The board's page of a query, with `changes` (search, state, page) made to it."""
        asked = {**vars(query), **changes}
        given = {name: value for name, value in (("q", asked["search"]), ("state", asked["state"]),
                                                 ("page", asked["page"] if asked["page"] > 1 else "")) if value}
        return f"{self.board}/" + (f"?{urlencode(given)}" if given else "")

    def district(self, slug: str) -> str:
        return f"{self.board}/districts/{quote(slug)}"

    def rejects(self, slug: str, day: str) -> str:
        return f"{self.board}/districts/{quote(slug)}/rejects/{day}.csv"

    def airflow_run(self, dag_id: str, run_id: str) -> str:
        return f"{self.airflow}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"

    def decide(self, review_run_id: str) -> str:
        """Where a person decides on a hold: its review run's request in Required Actions."""
        return f"{self.airflow_run(REVIEW, review_run_id)}/tasks/decide/required_actions"


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def tone(status: str | None) -> str:
    """The colour class of a status."""
    if not status:
        return "none"
    for start, name in (("uploaded: approved", "override"), ("uploaded without", "override"), ("uploaded", "ok"),
                        ("no attendance", "quiet"), ("skipped", "ok"), ("held", "held"),
                        ("failed", "failed"), ("dry run", "dry")):
        if status.startswith(start):
            return name
    return "none"


def percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def local(stamp: str | None, timezone: str) -> str:
    """An ISO UTC time as the district's wall clock, e.g. 11-20 16:45."""
    if not stamp:
        return ""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(zone(timezone)).strftime("%m-%d %H:%M")


def sparkline(shares: list[float | None]) -> str:
    """An SVG path of reject shares, oldest left; a gap where a date has none."""
    top = max([0.02, *(s for s in shares if s is not None)])
    step = SPARK_WIDTH / max(1, len(shares) - 1)
    parts, pen_up = [], True
    for n, value in enumerate(shares):
        if value is None:
            pen_up = True
            continue
        y = SPARK_HEIGHT - 2 - value / top * (SPARK_HEIGHT - 4)
        parts.append(f"{'M' if pen_up else 'L'}{n * step:.1f} {y:.1f}")
        pen_up = False
    return " ".join(parts)


def cell_title(slug: str, day: str, row: dict | None) -> str:
    if not row:
        return f"{slug} {day}: not synced"
    counts = "" if row.get("delivered") is None else (
        f" · {row['delivered']} rows delivered · {row['rejected']} rejected ({percent(share(row))})")
    earlier = " · Safety Shield holds an earlier upload of the date" if row["status"].startswith("held") and \
        row.get("delivered") else ""
    return f"{slug} {day}: {row['status']}{counts}{earlier}"


def grid_cells(slug: str, dates: list[str], cells: dict[tuple[str, str], dict]) -> Markup:
    """A district's row of the grid. Built here, not in the template: a thousand districts are 30,000 cells."""
    out = []
    for day in dates:
        row = cells.get((slug, day))
        out.append(f'<td class="c {tone(row["status"] if row else None)}" '
                   f'title="{escape(cell_title(slug, day, row))}"></td>')
    return Markup("".join(out))


def spark_title(dates: list[str], shares: list[float | None]) -> str:
    return "\n".join(f"{day} {percent(value) or '—'}" for day, value in zip(dates, shares, strict=True))


def freshness(line: DistrictLine, timezone: str, now: datetime) -> str:
    """Minutes behind Clever, or caught up; said with whether Clever has synced the district today at all."""
    if line.freshness_min is None:
        return "—"
    if line.freshness_min:
        return f"{line.freshness_min:,.0f} min"
    synced = datetime.fromisoformat(line.last_sync.replace("Z", "+00:00")).astimezone(zone(timezone)).date()
    return "caught up" if synced == now.astimezone(zone(timezone)).date() else "caught up (no sync today)"


@cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("clever_attendance.board", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.globals.update(tone=tone, percent=percent, local=local, sparkline=sparkline, spark_title=spark_title,
                       grid_cells=grid_cells, freshness=freshness, spark=(SPARK_WIDTH, SPARK_HEIGHT),
                       states=STATES, state_tone=STATE_TONES, search_max=SEARCH_MAX)
    return env


def _render(name: str, **values) -> str:
    return _templates().get_template(name).render(**values)


def board(links: Links, fleet: Fleet, now: datetime, view: View, lines: list[DistrictLine], dates: list[str],
          cells: dict[tuple[str, str], dict], waiting: list[dict]) -> str:
    """A page of the board: how many districts need attention and why, a search, then the page's districts (those
    that need attention first): what of theirs waits for a person, a row each, and their grid of recent school days."""
    shown = {e.slug: e for e in view.shown if e.district}
    return _render("board.html", links=links, view=view, lines=lines, dates=dates, cells=cells, waiting=waiting,
                   zones={slug: e.district.timezone for slug, e in shown.items()},
                   attention={slug: e.attention for slug, e in shown.items()},
                   broken=[e for e in view.shown if e.district is None], source=fleet.source, now=now,
                   as_of=now.astimezone(zone(fleet.timezone)).strftime("%Y-%m-%d %H:%M %Z"))


def district(links: Links, found: District, rows: list[dict], now: datetime) -> str:
    """A district's dates: status, counts, rejects by reason, and each date's rejects to download."""
    return _render("district.html", links=links, district=found, rows=rows,
                   as_of=now.astimezone(zone(found.timezone)).strftime("%Y-%m-%d %H:%M %Z"))


def run(links: Links, fleet: Fleet, dag_id: str, run_id: str, rows: list[dict], holds: list[dict]) -> str:
    """A run's tab: the attendance dates it synced, each district's outcome, and what the guard held and why."""
    dates = sorted({r["attendance_date"] for r in rows})
    zones = {d.slug: d.timezone for d in fleet.districts}
    return _render("run.html", links=links, dag_id=dag_id, run_id=run_id, rows=rows, dates=dates, zones=zones,
                   holds=holds)


def problem(title: str, message: str, advice: str, back: str | None = None) -> str:
    """What keeps the board from answering, said on the page; `back`: a link to the board's first page."""
    return _render("problem.html", title=title, message=message, advice=advice, back=back)


def not_ours(dag_id: str) -> str:
    return _render("not_ours.html", dag_id=dag_id)
