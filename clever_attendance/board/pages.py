"""The board's HTML, rendered on the server from the ledger (Jinja templates beside this module)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup, escape

from clever_attendance.ledger.read import DistrictLine, share
from clever_attendance.pipeline.config import District, Settings
from clever_attendance.settings import REVIEW

SPARK_WIDTH, SPARK_HEIGHT = 120, 22


@dataclass(frozen=True)
class Links:
    """Where the board's pages and Airflow's own live, as seen from the browser."""

    board: str  # the board's root path, e.g. /attendance-board
    airflow: str  # the UI's root path ("" at the server's root)

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
                       grid_cells=grid_cells, freshness=freshness, spark=(SPARK_WIDTH, SPARK_HEIGHT))
    return env


def _render(name: str, **values) -> str:
    return _templates().get_template(name).render(**values)


def board(links: Links, settings: Settings, now: datetime, lines: list[DistrictLine], dates: list[str],
          cells: dict[tuple[str, str], dict], waiting: list[dict]) -> str:
    """The page: what waits for a person, one row per district, then the grid of recent school days."""
    zones = {d.slug: d.timezone for d in settings.districts}
    return _render("board.html", links=links, lines=lines, dates=dates, cells=cells, zones=zones, waiting=waiting,
                   broken=settings.broken, source=settings.source, now=now,
                   as_of=now.astimezone(zone(settings.timezone)).strftime("%Y-%m-%d %H:%M %Z"))


def district(links: Links, found: District, rows: list[dict], now: datetime) -> str:
    """A district's dates: status, counts, rejects by reason, and each date's rejects to download."""
    return _render("district.html", links=links, district=found, rows=rows,
                   as_of=now.astimezone(zone(found.timezone)).strftime("%Y-%m-%d %H:%M %Z"))


def run(links: Links, settings: Settings, dag_id: str, run_id: str, rows: list[dict], holds: list[dict]) -> str:
    """A run's tab: the attendance dates it synced, each district's outcome, and what the guard held and why."""
    dates = sorted({r["attendance_date"] for r in rows})
    zones = {d.slug: d.timezone for d in settings.districts}
    return _render("run.html", links=links, dag_id=dag_id, run_id=run_id, rows=rows, dates=dates, zones=zones,
                   holds=holds)


def problem(title: str, message: str, advice: str) -> str:
    """What keeps the board from answering, said on the page."""
    return _render("problem.html", title=title, message=message, advice=advice)


def not_ours(dag_id: str) -> str:
    return _render("not_ours.html", dag_id=dag_id)
