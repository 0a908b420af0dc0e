"""Both DAGs from one definition: a task group per district (extract, transform, upload), then a report.

Imported by the DAG file at parse time, so it imports only Airflow and the districts file; the work
(pandas, the hooks) is imported inside the tasks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import (
    DAG,
    AssetAlias,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeadlineAlert,
    DeadlineReference,
    Param,
    SyncCallback,
    TaskGroup,
    get_current_context,
    task,
)

from clever_attendance.alerts import FailureNotice
from clever_attendance.operators.upload import SafetyShieldUploadOperator
from clever_attendance.pipeline.config import District, Settings
from clever_attendance.retry_policy import task_policy
from clever_attendance.settings import ASSET_ALIAS, DAILY, MAX_RETRY_DELAY, OWNER, POLL, POOL, TIMEOUTS

POLL_DOC = """\
### Clever attendance → Safety Shield, polling

Every run syncs, for each district, **today and `lookback_days` days before** (in the district's time
zone) from Clever's attendance API into Safety Shield's dataFileUpload API. A district whose Clever
`last_attendance_sync` has not moved since its last successful upload of the same window is skipped.

Each district is a task group: **extract** (Clever, pool `clever_api`) → **transform** (pandas +
pandera into the PowerSchool attendance CSV; `rejects.csv` says why each row was not delivered) →
**upload** (Safety Shield, idempotent). **report** sums up every district. Clear a district's group to
re-run it alone; re-running changes nothing in Safety Shield unless Clever changed.

Manual runs take a window (`start_date`/`end_date`), a subset of `districts`, `dry_run` (build the CSV
and rejects from what Clever holds now, upload nothing, page nobody; the report says where the files
are) and `force` (sync even when Clever says nothing is new).
"""

DAILY_DOC = """\
### Clever attendance → Safety Shield, one run per attendance date

Each run syncs **the one date on which its logical date falls** (in the DAG's time zone): the nightly
run reconciles yesterday. This is the DAG to backfill:

    airflow backfill create --dag-id clever_attendance_daily --from-date 2025-08-15 --to-date 2025-09-30T23:59

makes one run per date (the range selects the runs' 02:00 ticks: end it at the end of the last day);
`--reprocess-behavior completed` re-runs dates already done, safely. On SQLite, creating a backfill fails
("Database is locked") only while another component holds the write lock: try again, or use PostgreSQL.
Tasks as in `clever_attendance`.
"""


class AttendanceDAG(DAG):
    """Both DAGs' class: Airflow's DAG, whose `test()` (`airflow dags test`) runs without the Deadline Alerts.

    Airflow 3.3.2's dag.test() cannot finish a successful run of a DAG with Deadline Alerts: it looks the
    alerts up by database ids that only the dag-processor's copy of the DAG has, and fails. A test run pages
    nobody anyway; the scheduler's runs keep their alerts.
    """

    def test(self, *args, **kwargs):
        deadline, self.deadline = self.deadline, None
        try:
            return super().test(*args, **kwargs)
        finally:
            self.deadline = deadline


def _params(settings: Settings) -> dict[str, Param]:
    slugs = [d.slug for d in settings.districts]
    return {
        "districts": Param([], type="array", items={"type": "string", "enum": slugs},
                           title="Districts", description="Only these districts (none: all of them)."),
        "start_date": Param(None, type=["null", "string"], format="date", title="Start date",
                            description="Override the window: first attendance date (with end date)."),
        "end_date": Param(None, type=["null", "string"], format="date", title="End date",
                          description="Override the window: last attendance date, inclusive."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Build attendance.csv and rejects.csv from what Clever holds now, even when "
                                     "nothing is new, and upload nothing; the report says where they are. A dry "
                                     "run sends no alert."),
        "force": Param(False, type="boolean", title="Force",
                       description="Sync even when Clever's last_attendance_sync has not moved."),
    }


@task
def extract(slug: str) -> dict:
    """Read the district's roster and the window's attendance from Clever into staging."""
    from clever_attendance.pipeline import tasks

    return tasks.extract(get_current_context(), slug)


@task
def transform(slug: str, manifest: dict) -> dict:
    """Validate and reshape the staged records into attendance.csv and rejects.csv."""
    from clever_attendance.pipeline import tasks

    return tasks.transform(get_current_context(), slug, manifest)


@task(trigger_rule="all_done")
def report(slugs: list[str]) -> list[dict]:
    """One table for the run: every district's counts, import and timings."""
    from clever_attendance.pipeline import tasks

    return tasks.report(get_current_context(), slugs)


def _district_group(district: District, settings: Settings) -> TaskGroup:
    notice = FailureNotice(district.alert_identity(), list(district.alert_emails), settings.alert_from)
    with TaskGroup(group_id=district.slug, tooltip=f"{district.name}: Clever {district.clever_district_id} "
                   f"→ Safety Shield {district.safety_shield_district_id}") as group:
        manifest = extract.override(task_id="extract", pool=POOL, execution_timeout=TIMEOUTS["extract"],
                                    on_failure_callback=notice)(district.slug)
        staged = transform.override(task_id="transform", execution_timeout=TIMEOUTS["transform"],
                                    on_failure_callback=notice)(district.slug, manifest)
        upload = SafetyShieldUploadOperator(
            task_id="upload", csv_path=staged["csv_path"], district_slug=district.slug,
            safety_shield_district_id=district.safety_shield_district_id, window=manifest["window"],
            max_reject_share=district.max_reject_share, safety_shield_conn_id=district.safety_shield_conn_id,
            receipt_path=manifest["receipt_path"], receipt=manifest["receipt"], dry_run="{{ params.dry_run }}",
            counts=staged["counts"], asset_alias=ASSET_ALIAS, outlets=[AssetAlias(ASSET_ALIAS)], deferrable=True,
            execution_timeout=TIMEOUTS["upload"], on_failure_callback=notice)
        staged >> upload
    return group


def _deadline(dag_id: str, minutes: float, settings: Settings) -> DeadlineAlert:
    """Alert when a run is not finished `minutes` after it was queued (backfill runs page nobody)."""
    recipients = sorted({email for d in settings.districts for email in d.alert_emails})
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=timedelta(minutes=minutes),
        callback=SyncCallback("clever_attendance.alerts.deadline_missed", kwargs={
            "dag_id": dag_id, "minutes": minutes, "districts": [d.alert_identity() for d in settings.districts],
            "recipients": recipients, "from_email": settings.alert_from}))


def build(settings: Settings) -> list[DAG]:
    """The polling DAG and the daily (backfillable) DAG for the configured districts."""
    schedules = {
        POLL: (CronTriggerTimetable(settings.poll_schedule, timezone=settings.timezone), POLL_DOC, 1,
               settings.poll_deadline_minutes),
        DAILY: (CronDataIntervalTimetable(settings.daily_schedule, timezone=settings.timezone), DAILY_DOC, 4,
                settings.daily_deadline_minutes),
    }
    dags = []
    for dag_id, (schedule, doc, max_runs, deadline) in schedules.items():
        with AttendanceDAG(dag_id, schedule=schedule, start_date=datetime(2025, 8, 1), catchup=False,
                 max_active_runs=max_runs, default_args=_default_args(settings), params=_params(settings), doc_md=doc,
                 tags=["clever", "attendance", "safety-shield"], dag_display_name=_title(dag_id),
                 deadline=_deadline(dag_id, deadline, settings) if settings.deadline_alerts else None) as dag:
            groups = [_district_group(d, settings) for d in settings.districts]
            groups >> report.override(execution_timeout=TIMEOUTS["report"])([d.slug for d in settings.districts])
        dags.append(dag)
    return dags


def _default_args(settings: Settings) -> dict:
    """Retries as clever_attendance.retry_policy decides: only the failures it marks RETRY, with backoff."""
    return {"owner": OWNER, "retries": settings.task_retries, "retry_policy": task_policy(),
            "retry_delay": timedelta(seconds=settings.retry_delay_seconds), "retry_exponential_backoff": 2.0,
            "max_retry_delay": MAX_RETRY_DELAY}


def _title(dag_id: str) -> str:
    return {POLL: "Clever attendance → Safety Shield (polling)",
            DAILY: "Clever attendance → Safety Shield (daily, backfill)"}[dag_id]
