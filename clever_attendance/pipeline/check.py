"""The check: which districts a run syncs, and with which window, decided in one task for all of them.

A district whose Clever `last_attendance_sync` is the one every date of its window was last read at (the
ledger's `district_days`) is left out, so the scheduler never starts a task for it; the others become the
instances of the mapped district group. Every district's sync is read at once (`hooks.clever_async`), one request each.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from airflow.sdk import BaseHook

from clever_attendance.contracts import RunOptions, Skip, Target, Window
from clever_attendance.errors import CleverError, RunInputError
from clever_attendance.hooks.clever_async import read_syncs
from clever_attendance.hooks.ledger import LedgerHook, ledger_errors
from clever_attendance.ledger import progress
from clever_attendance.ledger.delivered import read_at
from clever_attendance.pipeline import config
from clever_attendance.pipeline.window import requested, single_day, trailing
from clever_attendance.settings import CLEVER_RETENTION_DAYS, DAILY, EVENTS, POLL, WATCH_ASSET_URI

log = logging.getLogger(__name__)
POLLING = (POLL, EVENTS)  # the DAGs whose runs come minutes apart, over the same recent dates


def window(context, options: RunOptions, fleet: config.Fleet, district: config.District,
           sync: str | None = None) -> Window:
    """The run's dates: the manual override, else one date (daily DAG), else today and the lookback
    (polling), where "today" is that of the district's moved sync for an event-driven run."""
    moment = context.get("logical_date") or context["dag_run"].run_after  # a manual run has no logical date
    override = requested(options, moment.astimezone(ZoneInfo(district.timezone)).date())
    if override:
        return override
    if context["dag"].dag_id == DAILY:
        day = single_day(moment, fleet.timezone)
        return reconciled(day, district, moment) if reconciles(context, options) else day
    return trailing(datetime.fromisoformat(sync) if sync else moment, district.timezone, district.lookback_days)


def reconciles(context, options: RunOptions) -> bool:
    """The daily DAG's nightly (scheduled) runs reconcile, and a manual run of it that asks to; backfills do not
    (each of their runs is one date), nor do the other DAGs."""
    run_type = context["dag_run"].run_type
    return context["dag"].dag_id == DAILY and (getattr(run_type, "value", run_type) == "scheduled"
                                               or options.reconcile)


def reconciled(day: Window, district: config.District, moment: datetime) -> Window:
    """The district's `reconcile_days` up to the run's date, within what Clever still holds."""
    earliest = moment.astimezone(ZoneInfo(district.timezone)).date() - timedelta(days=CLEVER_RETENTION_DAYS)
    return Window(max(day.end - timedelta(days=district.reconcile_days - 1), earliest), day.end)


def moved_syncs(context) -> dict[str, str]:
    """The districts the watcher's events of this run name, with their newest sync."""
    moved: dict[str, str] = {}
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            if getattr(event.asset, "uri", None) != WATCH_ASSET_URI:
                continue
            for slug, sync in ((event.extra or {}).get("payload") or {}).get("districts", {}).items():
                moved[slug] = max(sync, moved.get(slug, sync))
    return moved


def chosen(context, options: RunOptions, fleet: config.Fleet) -> dict[str, Window]:
    """The run's districts and their windows: those the form selects (all when none), or those the
    watcher saw move for an event-driven run."""
    selected = options.districts
    known = {d.slug for d in fleet.districts}
    unknown = sorted(set(selected) - known)
    if unknown:  # named, but not echoed at any length: a run's conf is anyone's
        raise RunInputError(f"field 'districts': {len(unknown)} not in {fleet.source}: "
                            f"{', '.join(repr(slug[:40]) for slug in unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
    moved = moved_syncs(context) if context["dag"].dag_id == EVENTS else {}
    gone = sorted(set(moved) - known)
    if gone:
        log.warning("the watcher named districts no longer in %s: %s", fleet.source, ", ".join(gone))
    wanted = set(selected) or ({s for s in moved if s in known} if moved else known)
    return {d.slug: window(context, options, fleet, d, moved.get(d.slug)) for d in fleet.districts
            if d.slug in wanted}


def check(context) -> list[dict]:
    """The districts to sync, as the district group's arguments (`Target`s); the others go to XCom `skipped`
    (slug: `Skip`)."""
    fleet, options = config.load(), RunOptions.of(context)
    dag_id, run_id = context["dag"].dag_id, context["run_id"]
    if fleet.broken:
        log.warning("%s", fleet.left_out())
        if dag_id == DAILY and not options.dry_run:  # once a night, not every poll
            from clever_attendance.alerts import districts_left_out

            districts_left_out(fleet)
    windows = chosen(context, options, fleet)
    skipped: dict[str, Skip] = {}
    with ledger_errors(f"reading what run {run_id} has nothing new for"), LedgerHook().get_conn().connect() as db:
        # a dry run previews what Clever holds now, new or not
        known = {} if options.force or options.dry_run else read_at(db, windows)
        lane = POLLING if dag_id in POLLING else ()  # a daily run's dates are its own (backfills run side by side)
        elsewhere = {} if options.dry_run or not lane else progress.in_flight(db, lane, run_id)
    for slug, (other_dag, other_run) in _running(context["ti"], elsewhere, windows).items():
        log.warning("Clever district %s: still being synced by run %s of %s: left to it", slug, other_run, other_dag)
        skipped[slug] = Skip(progress.ELSEWHERE, windows[slug], run=other_run)
        known.pop(slug, None)
    for slug, sync in _syncs(fleet, list(known)).items():
        if isinstance(sync, CleverError):  # the district's own extract retries it, or fails with a notice
            log.warning("Clever district %s: its sync could not be checked (%s): it is synced", slug, sync)
        elif sync == known[slug]:
            skipped[slug] = Skip(progress.NOTHING_NEW, windows[slug], sync=sync)
    context["ti"].xcom_push(key="skipped", value={slug: skip.to_xcom() for slug, skip in skipped.items()})
    with ledger_errors(f"recording the districts of run {run_id}"):
        progress.plan(LedgerHook().get_conn(), dag_id, run_id, {s: str(w) for s, w in windows.items()},
                      {slug: skip.reason for slug, skip in skipped.items()}, reconciles(context, options))
    targets = [Target(slug, span) for slug, span in windows.items() if slug not in skipped]
    log.info("%d district(s) to sync, %d left out (nothing new, or in another run)", len(targets), len(skipped))
    return [target.to_xcom() for target in targets]


def _running(ti, elsewhere: dict[str, tuple[str, str, str]], windows: dict[str, Window]
             ) -> dict[str, tuple[str, str]]:
    """Of the run's districts still to sync in another run over dates of this run's window, those whose run
    Airflow says is still going: slug → (dag_id, run_id)."""
    overlapping = {slug: (dag, run) for slug, (dag, run, window) in elsewhere.items()
                   if slug in windows and windows[slug].overlaps(Window.parse(window))}
    states = {run: ti.get_dagrun_state(*run) for run in set(overlapping.values())}
    return {slug: run for slug, run in overlapping.items() if states[run] in ("queued", "running")}


def _syncs(fleet: config.Fleet, slugs: list[str]) -> dict[str, str | None | CleverError]:
    districts = {slug: fleet.district(slug) for slug in slugs}
    ids = {slug: (d.clever_district_id, d.clever_conn_id) for slug, d in districts.items()}
    connections = {conn_id: BaseHook.get_connection(conn_id) for _, conn_id in set(ids.values())}
    return asyncio.run(read_syncs(connections, ids)) if ids else {}
