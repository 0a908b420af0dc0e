"""Alerts of the Clever attendance DAGs: task failures, missed deadlines and late data.

Deadline callbacks must be importable by the component that runs them (the executor's workers), so
this package lives in plugins/, which Airflow puts on every component's path.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from attendance_alerts.messages import classify, district_line
from attendance_alerts.send import send

log = logging.getLogger(__name__)
SUBJECT = "[Clever attendance]"


def run_link(dag_id: str, run_id: str, task_id: str | None = None) -> str:
    """The run (or one of its tasks) in the Airflow UI."""
    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")
    link = f"{base}/dags/{dag_id}/runs/{quote(run_id, safe='')}"
    return link + (f"/tasks/{task_id}" if task_id else "")


class FailureNotice:
    """`on_failure_callback` of a district's tasks: one message once the task has failed for good."""

    def __init__(self, district: dict, recipients: list[str], from_email: str) -> None:
        self.district, self.recipients, self.from_email = district, recipients, from_email

    def __call__(self, context) -> None:
        ti, dag_run = context["ti"], context["dag_run"]
        step = ti.task_id.rsplit(".", 1)[-1]
        category, advice, error = classify(context.get("exception"))
        subject = f"{SUBJECT} {self.district['slug']}: {step} failed: {category}"
        text = "\n".join([
            f"Clever attendance of {district_line(self.district)} did not reach Safety Shield.",
            f"Step: {step} (DAG {ti.dag_id}, run {dag_run.run_id}, try {ti.try_number})",
            f"What went wrong: {category}",
            f"Error: {error}",
            f"What to do next: {advice}",
            f"Run: {run_link(ti.dag_id, dag_run.run_id, ti.task_id)}",
        ])
        send(subject, text, self.recipients, self.from_email)


def _unfinished(dag_id: str, run_id: str, districts: list[dict]) -> list[str] | None:
    """Slugs of the districts whose upload has not succeeded, read from the metadata database; None if the
    component running the callback cannot read it."""
    try:
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            states = dict(session.query(TaskInstance.task_id, TaskInstance.state).filter(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id,
                TaskInstance.task_id.like("%.upload")))
    except Exception:  # noqa: BLE001 - the alert matters more than this detail
        log.warning("deadline alert: task states unreadable here", exc_info=True)
        return None
    return [d["slug"] for d in districts if states.get(f"{d['slug']}.upload") not in ("success", "skipped")]


def deadline_missed(context: dict | None = None, *, dag_id: str, minutes: float, districts: list[dict],
                    recipients: list[str], from_email: str, **_: object) -> None:
    """SyncCallback of the DAGs' Deadline Alert: the run is not finished `minutes` after it was queued."""
    dag_run = (context or {}).get("dag_run") or {}
    run_id, state, run_type = dag_run.get("run_id", "?"), dag_run.get("state", "?"), dag_run.get("run_type", "")
    if run_type == "backfill":
        log.info("deadline passed for backfill run %s of %s: a backfill pages nobody", run_id, dag_id)
        return
    unfinished = _unfinished(dag_id, run_id, districts)
    status = "has failed" if state == "failed" else "is still running" if state in ("running", "queued") \
        else f"is {state}"
    names = {d["slug"]: district_line(d) for d in districts}
    listed = ("unknown (see the run)" if unfinished is None else
              "\n  ".join(names[s] for s in unfinished) if unfinished else "none: every district uploaded")
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
