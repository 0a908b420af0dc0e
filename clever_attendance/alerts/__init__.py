"""Alerts of the Clever attendance DAGs: task failures, missed deadlines and late data.

Deadline callbacks must be importable by the component that runs them (the executor's workers): the
installed package is, on every component.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from clever_attendance.alerts.send import send
from clever_attendance.contracts import RunOptions
from clever_attendance.errors import RunInputError
from clever_attendance.retry_policy import classify
from clever_attendance.settings import EVENTS, POLL, REVIEW

log = logging.getLogger(__name__)
SUBJECT = "[Clever attendance]"


def district_line(district: dict) -> str:
    """How every alert names a district."""
    return (f"{district['name']} (slug {district['slug']}, Clever district {district['clever_district_id']}, "
            f"Safety Shield {district['safety_shield_district_id']})")


def base_url() -> str:
    """The Airflow UI's address, as links in alerts give it."""
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")


def run_link(dag_id: str, run_id: str, task_id: str | None = None, map_index: int = -1) -> str:
    """The run (or one of its tasks, or one district's instance of a mapped task) in the Airflow UI."""
    link = f"{base_url()}/dags/{dag_id}/runs/{quote(run_id, safe='')}"
    if task_id:
        link += f"/tasks/{task_id}" + (f"/mapped/{map_index}" if map_index >= 0 else "")
    return link


def district_of(task, dag_run=None) -> str | None:
    """The slug of the district a task instance of the mapped district group, or a review run, works for; None for
    a run's own tasks (check, report). A review's district is its hold's, in the ledger: its conf is anyone's."""
    slug = getattr(task, "district_slug", None)
    if slug or getattr(task, "dag_id", None) != REVIEW:
        return slug
    from clever_attendance.pipeline.holds import review_of

    try:
        return review_of(dag_run).district
    except RunInputError:
        return None


class FailureNotice:
    """`on_failure_callback` of the DAGs' tasks: one message once a task has failed for good, to the recipients of
    its district, or of every district when the run's own check failed."""

    def __init__(self, from_email: str) -> None:
        self.from_email = from_email

    def __call__(self, context) -> None:
        from clever_attendance.pipeline import config

        ti, dag_run = context["ti"], context["dag_run"]
        fleet, slug = config.load(), district_of(context["task"], dag_run)
        if ti.dag_id == REVIEW and not slug:  # a run nobody's hold started (by hand): no district's team to tell
            log.warning("%s run %s names no hold the data guard recorded: it failed, and nobody is notified",
                        REVIEW, dag_run.run_id)
            return
        districts = [fleet.district(slug)] if slug else list(fleet.districts)
        step = getattr(context["task"], "step", None) or ti.task_id.rsplit(".", 1)[-1]  # a district's sync: its step
        category, advice, error = classify(context.get("exception"))
        subject = f"{SUBJECT} {slug or ti.dag_id}: {step} failed: {category}"
        text = "\n".join([
            f"Clever attendance of {district_line(districts[0].alert_identity())} did not reach Safety Shield."
            if slug else f"Clever attendance did not reach Safety Shield: the run's {step} failed before any "
                         "district was synced.",
            f"Step: {step} (DAG {ti.dag_id}, run {dag_run.run_id}, try {ti.try_number})",
            f"What went wrong: {category}",
            f"Error: {error}",
            f"What to do next: {advice}",
            f"Run: {run_link(ti.dag_id, dag_run.run_id, ti.task_id, ti.map_index)}",
        ])
        if _options(context.get("params") or {}).dry_run:
            log.warning("dry run: a failure notice goes to this log only\n%s\n%s", subject, text)
            return
        send(subject, text, sorted({e for d in districts for e in d.alert_emails}), self.from_email)


def _options(given: dict) -> RunOptions:
    """The run's options; those of a run whose form is what failed (at its check): the defaults, so that it is
    told."""
    try:
        return RunOptions.parse(given)
    except RunInputError:
        return RunOptions()


def _unfinished(dag_id: str, run_id: str, districts: list[dict], options: RunOptions) -> list[str]:
    """Slugs of the run's districts that have neither delivered nor found nothing new, by the attendance ledger: a
    deadline callback may read neither the metadata database nor the task states. Before the run's check has
    chosen (or when the ledger does not answer), the districts the run was asked for."""
    from clever_attendance.hooks.ledger import LedgerHook
    from clever_attendance.ledger.progress import unfinished

    try:
        with LedgerHook().get_conn().connect() as db:
            found = unfinished(db, dag_id, run_id)
    except Exception:  # noqa: BLE001 - the alert goes out all the same, naming what the run was asked for
        log.exception("the attendance ledger could not say which districts of %s run %s are done", dag_id, run_id)
        found = None
    return found if found is not None else list(options.districts) or [d["slug"] for d in districts]


def deadline_missed(context: dict | None = None, *, dag_id: str, minutes: float, districts: list[dict],
                    recipients: list[str], from_email: str, **_: object) -> None:
    """SyncCallback of the DAGs' Deadline Alert: the run is not finished `minutes` after it was queued."""
    dag_run = (context or {}).get("dag_run") or {}
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id") or "?"  # the API model names it dag_run_id
    state, run_type = dag_run.get("state", "?"), dag_run.get("run_type", "")
    options = _options(dag_run.get("conf") or {})
    if run_type == "backfill" or options.dry_run:
        log.info("deadline passed for %s run %s of %s: backfills and dry runs page nobody", run_type, run_id, dag_id)
        return
    unfinished = _unfinished(dag_id, run_id, districts, options)
    status = "has failed" if state == "failed" else "is still running" if state in ("running", "queued") \
        else f"is {state}"
    names = {d["slug"]: district_line(d) for d in districts}
    listed = "\n  ".join(names[s] for s in unfinished) if unfinished else "none: every district is done"
    subject = f"{SUBJECT} {dag_id}: not finished {minutes:g} minutes after it was queued"
    text = "\n".join([
        f"The Clever attendance run {run_id} of {dag_id} missed its deadline ({minutes:g} minutes after it "
        f"was queued) and {status}.",
        f"Districts whose attendance has not reached Safety Shield:\n  {listed}",
        "What to do next: open the run; a failed district has its own failure notice with the cause. A run "
        "still running is usually waiting on Clever's rate limit or on Safety Shield's import.",
        f"Run: {run_link(dag_id, run_id)}",
    ])
    send(subject, text, recipients, from_email)


def districts_left_out(fleet) -> None:
    """The districts file has district entries with a mistake: left out of every DAG until fixed."""
    text = "\n".join([
        fleet.left_out(),
        "No attendance of these districts reaches Safety Shield until each field named is fixed in the districts "
        "file; the DAGs take the file up at their next parse. The Airflow UI lists the same as an import error of "
        "clever_attendance_districts_file.py.",
    ])
    send(f"{SUBJECT} districts file: {len(fleet.broken)} district(s) left out", text,
         sorted({e for d in fleet.districts for e in d.alert_emails}), fleet.alert_from)


def latency_pages(dag_id: str, run_type: str) -> bool:
    """Does late attendance page anyone for this run? The promise of minutes is that of the polling DAG's schedule
    and of the watcher's events: a manual run (a window override, a dry run), a backfill or the daily DAG's
    night run is late by design."""
    return (dag_id, run_type) in ((POLL, "scheduled"), (EVENTS, "asset_triggered"))


def latency_breached(dag_id: str, run_id: str, district: dict, p95_minutes: float, sla_minutes: float,
                     recipients: list[str], from_email: str) -> None:
    """Attendance reached Safety Shield later than the district's latency_sla."""
    subject = f"{SUBJECT} {district['slug']}: attendance arrived late (p95 {p95_minutes:.0f} min)"
    text = "\n".join([
        f"Clever attendance of {district_line(district)} reached Safety Shield {p95_minutes:.1f} minutes after "
        f"it changed in Clever (95th percentile), over the district's latency_sla of {sla_minutes:g} minutes.",
        "What to do next: check how long the run waited to start (pool clever_api, the scheduler) and how "
        "long each step took in the run's report; a tighter poll_schedule shortens the wait.",
        f"Run: {run_link(dag_id, run_id)}",
    ])
    send(subject, text, recipients, from_email)


class HoldNotice(BaseNotifier):
    """Notifier of a review's decision task, when its request is made: what is held, why, and where to decide."""

    def notify(self, context) -> None:
        from airflow.providers.standard.operators.hitl import HITLOperator

        from clever_attendance.pipeline import config
        from clever_attendance.pipeline.holds import review_of

        review, fleet = review_of(context["dag_run"]), config.load()
        district = fleet.district(review.district)
        dates = ", ".join(d.date for d in review.dates)
        link = HITLOperator.generate_link_to_ui_from_context(context=context, base_url=base_url())
        subject = f"{SUBJECT} {district.slug}: {dates} held for a person"
        text = "\n".join([
            f"Clever attendance of {district_line(district.alert_identity())} for {dates} looks wrong next to its "
            f"schools' last school days: those dates' {review.rows} rows were not uploaded to Safety Shield; the "
            "rest of the district's attendance was.",
            *(f"  {line}" for d in review.dates for line in d.lines),
            f"What to do next: decide (Approve, Reject, or upload all but the suspicious schools) within "
            f"{review.timeout_hours:g} hours. With no decision nothing is uploaded, and you get a notice.",
            f"Decide: {link}",
        ])
        try:
            send(subject, text, list(district.alert_emails), fleet.alert_from)
        except Exception:  # noqa: BLE001 - a notifier that raises fails the request itself: the hold stays asked
            log.exception("the hold notice of %s could not be sent; the request waits in Required Actions", subject)
