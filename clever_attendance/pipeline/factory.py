"""The delivering DAGs (polling, daily, event-driven) from one definition, and the review DAG. A delivering DAG:
a check of every district, a mapped task group with one instance per district to sync (extract, transform,
upload), then a report.

Imported by the DAG file at parse time, so it imports only Airflow and the districts file; the work
(pandas, the hooks) is imported inside the tasks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import (
    DAG,
    Asset,
    AssetAlias,
    AssetWatcher,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeadlineAlert,
    Param,
    SyncCallback,
    get_current_context,
    task,
    task_group,
)

from clever_attendance.alerts import FailureNotice, HoldNotice
from clever_attendance.alerts.deadline import RunQueuedAt
from clever_attendance.operators.review import HoldDecision
from clever_attendance.operators.sync import CleverDistrictSyncOperator
from clever_attendance.operators.upload import SafetyShieldUploadOperator
from clever_attendance.pipeline.config import Fleet
from clever_attendance.retry_policy import task_policy
from clever_attendance.settings import (
    ASSET_ALIAS,
    DAILY,
    EVENTS,
    GROUP,
    MAX_RETRY_DELAY,
    OWNER,
    POLL,
    POOL,
    REVIEW,
    RUNS_AT_ONCE,
    TIMEOUTS,
    WATCH_ASSET,
    WATCH_ASSET_URI,
    WATCHER,
)
from clever_attendance.triggers.clever import CleverSyncTrigger

POLL_DOC = """\
### Clever attendance → Safety Shield, polling

Every run syncs, for each district, **today and `lookback_days` days before** (in the district's time
zone) from Clever's attendance API into Safety Shield's dataFileUpload API. This is the safety net under
`clever_attendance_events`, which syncs a district minutes after Clever does.

**check** reads every district's Clever `last_attendance_sync` at once; a district whose sync has not moved
since its window's last upload is skipped there, without a task of its own. The others are the instances
of the mapped group **district**, each named by its slug, whose one task **sync** (pool `clever_api`) runs three
steps, each a section of its log and an XCom: *extract* (Clever) → *transform* (pandas + pandera into the
PowerSchool attendance CSV; `rejects.csv` says why each row was not delivered) → *upload* (Safety Shield,
idempotent). A retry, or a clear after a failure, starts at the step that failed. **report** sums up every
district. Clear one district's instance to re-run it alone. A date is posted only when its rows differ from what
Safety Shield was sent (the ledger keeps a digest per district and date): re-running posts nothing unless Clever
changed.

Manual runs take a window (`start_date`/`end_date`), a subset of `districts`, `dry_run` (build the CSV
and rejects from what Clever holds now, upload nothing, page nobody; the report says where the files
are) and `force` (sync even when Clever says nothing is new).
"""

DAILY_DOC = """\
### Clever attendance → Safety Shield, one run per attendance date

Each **nightly (scheduled) run reconciles**: for every district it reads every date of `reconcile_days` up to
the date on which its logical date falls (default: all Clever keeps, 183 days), compares each date's rows with
what Safety Shield was sent (the ledger's digests) and posts only the dates that differ: corrections of any age,
dates never delivered or delivered in part. A manual run with `reconcile` does the same; with `dry_run` too, its
report lists the dates it would post and why. A backfill run syncs **the one date on which its logical date
falls**. This is the DAG to backfill:

    airflow backfill create --dag-id clever_attendance_daily --from-date 2025-08-15 --to-date 2025-09-30T23:59

makes one run per date (the range selects the runs' 02:00 ticks: end it at the end of the last day);
`--reprocess-behavior completed` re-runs dates already done, safely. On SQLite, creating a backfill fails
("Database is locked") only while another component holds the write lock: try again, or use PostgreSQL.
Tasks as in `clever_attendance`.
"""

EVENTS_DOC = """\
### Clever attendance → Safety Shield, when Clever syncs

Scheduled on the asset `clever_last_attendance_sync`, whose watcher in the triggerer reads every watched
district's Clever `last_attendance_sync` each `watch_interval_seconds` (one request per district) and
records an event naming the districts whose sync moved. Each run syncs just those districts, the window
of the polling DAG (today and `lookback_days` before, "today" being the day of the district's new sync),
and, as every DAG, skips a district whose window the ledger says was read at Clever's current sync. Tasks as in
`clever_attendance`. A district with `watch: false` is left to the polling DAG.
"""


REVIEW_DOC = """\
### Clever attendance held for a person

Started by the data guard, one run per hold: a district's dates whose schools look broken next to their own
recent school days (a school all absent, missing, or with far fewer students than usual) were kept out of its
upload. **decide** asks a person in Browse → Required Actions (counts and shares only): *Approve* uploads the held
rows as they are, *Reject* uploads none of them, *Upload all but the suspicious schools* uploads the rest.
**upload** then sends what was decided; **record** writes the decision and its outcome to the attendance ledger.
With no decision in the district's `hold_timeout_hours`, **decide** fails with a notice and nothing is uploaded.
Not for triggering by hand: a run acts only on the hold the guard recorded in the attendance ledger under the
run's own id (its conf names it, `{"hold": "<run id>"}`), on the held file whose digest the guard recorded; any
other run fails before anything is read or uploaded. Only the district's `reviewers` may decide.
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


def _params(fleet: Fleet, dag_id: str) -> dict[str, Param]:
    slugs = [d.slug for d in fleet.districts]
    reconcile = {"reconcile": Param(False, type="boolean", title="Reconcile",
                                    description="As the nightly run: compare every date in reconcile_days (Clever's "
                                                "retention) with what Safety Shield was sent, and post what differs "
                                                "(corrections, missing dates).")} if dag_id == DAILY else {}
    return {**reconcile,
        "districts": Param(None, type=["null", "array"], items={"type": "string", "enum": slugs},
                           title="Districts", description="Only these districts (none: all of them)."),
        "start_date": Param(None, type=["null", "string"], format="date", title="Start date",
                            description="Override the window: first attendance date (with end date)."),
        "end_date": Param(None, type=["null", "string"], format="date", title="End date",
                          description="Override the window: last attendance date, inclusive."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Build attendance.csv and rejects.csv from what Clever holds now, even when "
                                     "nothing is new, and upload nothing; the report says where they are. A dry "
                                     "run sends no alert. Leave 'Unpause on trigger' unchecked: an unpaused DAG "
                                     "also runs on its schedule, for real."),
        "force": Param(False, type="boolean", title="Force",
                       description="Sync even when Clever's last_attendance_sync has not moved."),
    }


@task
def check() -> list[dict]:
    """Which districts to sync (Clever's last_attendance_sync of all of them, read at once) and their windows."""
    from clever_attendance.pipeline.check import check

    return check(get_current_context())


@task(trigger_rule="all_done")
def report(targets: list[dict]) -> list[dict]:
    """One table for the run: every district's counts, import and timings."""
    from clever_attendance.pipeline import tasks

    return tasks.report(get_current_context(), targets)


def _delivered(context) -> None:
    from clever_attendance.pipeline import tasks

    tasks.mark_delivered(context)


def _district_group(notice: FailureNotice):
    @task_group(group_id=GROUP, tooltip="One instance per district with something new, named by its slug")
    def district(slug: str, window: str) -> None:
        CleverDistrictSyncOperator(
            task_id="sync", district_slug=slug, window=window, pool=POOL, asset_alias=ASSET_ALIAS,
            outlets=[AssetAlias(ASSET_ALIAS)], deferrable=True, execution_timeout=TIMEOUTS["sync"],
            on_failure_callback=notice, on_success_callback=_delivered, map_index_template="{{ task.district_slug }}")

    return district


@task
def deliver(decision: dict) -> dict:
    """The file the person's decision uploads (the held rows, some of them, or none)."""
    from clever_attendance.pipeline import tasks

    return tasks.decide_upload(get_current_context(), decision)


@task(trigger_rule="all_done")
def record() -> dict:
    """The decision and the held dates' outcome in the attendance ledger."""
    from clever_attendance.pipeline import tasks

    return tasks.record_review(get_current_context())


def _review_dag(fleet: Fleet, notice: FailureNotice) -> DAG:
    """One run per hold: a person decides, then what they decided is uploaded and recorded. Never paused by
    default: a hold must reach a person even where new DAGs start paused."""
    with AttendanceDAG(REVIEW, schedule=None, start_date=datetime(2025, 8, 1), catchup=False, max_active_runs=64,
                       is_paused_upon_creation=False, default_args=_default_args(fleet), doc_md=REVIEW_DOC,
                       tags=["clever", "attendance", "safety-shield"], dag_display_name=_title(REVIEW)) as dag:
        decision = HoldDecision(task_id="decide", notifiers=[HoldNotice()], on_failure_callback=notice, retries=0)
        decided = deliver.override(on_failure_callback=notice)(decision.output)
        upload = SafetyShieldUploadOperator(
            task_id="upload", order=decided["order"], asset_alias=ASSET_ALIAS, outlets=[AssetAlias(ASSET_ALIAS)],
            deferrable=True, execution_timeout=TIMEOUTS["upload"], on_failure_callback=notice)
        upload >> record.override(execution_timeout=TIMEOUTS["report"])()
    return dag


def _watched_asset(fleet: Fleet) -> Asset:
    """The asset the Clever watcher updates: one event per reading in which some districts' sync moved."""
    watched = [[d.slug, d.clever_district_id, d.clever_conn_id] for d in fleet.watched()]
    trigger = CleverSyncTrigger(watched, fleet.watch_interval_seconds)
    return Asset(name=WATCH_ASSET, uri=WATCH_ASSET_URI, watchers=[AssetWatcher(name=WATCHER, trigger=trigger)])


def _deadline(dag_id: str, minutes: float, fleet: Fleet) -> DeadlineAlert:
    """Alert when a run is not finished `minutes` after it was queued (backfill runs page nobody)."""
    recipients = sorted({email for d in fleet.districts for email in d.alert_emails})
    return DeadlineAlert(
        reference=RunQueuedAt(), interval=timedelta(minutes=minutes),
        callback=SyncCallback("clever_attendance.alerts.deadline_missed", kwargs={
            "dag_id": dag_id, "minutes": minutes, "districts": [d.alert_identity() for d in fleet.districts],
            "recipients": recipients, "from_email": fleet.alert_from}))


def build(fleet: Fleet) -> list[DAG]:
    """The polling DAG, the daily (backfillable) DAG, when districts are watched the event-driven DAG, and the
    guard's review DAG."""
    schedules = {
        POLL: (CronTriggerTimetable(fleet.poll_schedule, timezone=fleet.timezone), POLL_DOC, RUNS_AT_ONCE,
               fleet.poll_deadline_minutes),
        DAILY: (CronDataIntervalTimetable(fleet.daily_schedule, timezone=fleet.timezone), DAILY_DOC, 4,
                fleet.daily_deadline_minutes),
    }
    if fleet.watched():
        schedules[EVENTS] = ([_watched_asset(fleet)], EVENTS_DOC, RUNS_AT_ONCE, fleet.poll_deadline_minutes)
    notice = FailureNotice(fleet.alert_from)
    dags = []
    for dag_id, (schedule, doc, max_runs, deadline) in schedules.items():
        with AttendanceDAG(dag_id, schedule=schedule, start_date=datetime(2025, 8, 1), catchup=False,
                 max_active_runs=max_runs, default_args=_default_args(fleet), params=_params(fleet, dag_id),
                 doc_md=doc, tags=["clever", "attendance", "safety-shield"], dag_display_name=_title(dag_id),
                 deadline=_deadline(dag_id, deadline, fleet) if fleet.deadline_alerts else None) as dag:
            targets = check.override(execution_timeout=TIMEOUTS["check"], on_failure_callback=notice)()
            groups = _district_group(notice).expand_kwargs(targets)
            groups >> report.override(execution_timeout=TIMEOUTS["report"])(targets)
        dags.append(dag)
    return [*dags, _review_dag(fleet, notice)]


def _default_args(fleet: Fleet) -> dict:
    """Retries as clever_attendance.retry_policy decides: only the failures it marks RETRY, with backoff."""
    return {"owner": OWNER, "retries": fleet.task_retries, "retry_policy": task_policy(),
            "retry_delay": timedelta(seconds=fleet.retry_delay_seconds), "retry_exponential_backoff": 2.0,
            "max_retry_delay": MAX_RETRY_DELAY}


def _title(dag_id: str) -> str:
    return {POLL: "Clever attendance → Safety Shield (polling)",
            DAILY: "Clever attendance → Safety Shield (daily, backfill)",
            EVENTS: "Clever attendance → Safety Shield (when Clever syncs)",
            REVIEW: "Clever attendance → Safety Shield (held for a person)"}[dag_id]
