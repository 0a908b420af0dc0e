"""The DAGs' Deadline Alerts are measured from when a run was queued, under a reference of the project's own."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import BaseDeadlineReference, DeadlineReference, deadline_reference


@deadline_reference(DeadlineReference.TYPES.DAGRUN_QUEUED)
class RunQueuedAt(BaseDeadlineReference):
    """When the run was queued: Airflow's own `DeadlineReference.DAGRUN_QUEUED_AT`, under another name.

    Airflow 3.3's Clear of any task in a run whose DAGRUN_QUEUED_AT deadline is pending fails (HTTP 500,
    apache/airflow#70368): `_recalculate_dagrun_queued_at_deadlines` reads the alert's interval, stored as JSON
    since 3.3.0, as seconds. It recalculates only that built-in reference's deadlines, so this one is left alone:
    Clear works, and a cleared run keeps its first deadline (one cleared after it passed had its alert). The
    scheduler finds the class through `plugins/attendance_deadlines.py`. It can go once Airflow's fix (#70370)
    is in the pinned release: then use DAGRUN_QUEUED_AT again.
    """

    required_kwargs = {"dag_id", "run_id"}

    def _evaluate_with(self, *, session, dag_id: str, run_id: str, **_: object) -> datetime | None:
        import sqlalchemy as sa
        from airflow.models import DagRun

        return session.scalar(sa.select(DagRun.queued_at).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
