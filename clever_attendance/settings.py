"""The project's names and limits that more than one module, or a person, needs to find in one place."""

from __future__ import annotations

from datetime import timedelta

POLL, DAILY = "clever_attendance", "clever_attendance_daily"  # the polling and the daily (backfill) DAGs' ids
EVENTS = "clever_attendance_events"  # the DAG the Clever watcher's events schedule
REVIEW = "clever_attendance_review"  # one run per hold of the data guard: a person's decision, then its upload
WATCH_ASSET = "clever_last_attendance_sync"  # the asset whose watcher reads Clever's last_attendance_sync
WATCH_ASSET_URI = "clever://attendance/last_attendance_sync"
WATCHER = "clever_sync_watcher"  # the asset watcher's name (its trigger: triggers.clever.CleverSyncTrigger)
GROUP = "district"  # the mapped task group: one instance per district to sync, labelled by its slug
SYNC = f"{GROUP}.sync"  # its one task: extract, transform, upload
POOL = "clever_api"  # districts syncing at once, across every DAG (so, Clever reads at once): create it at set-up
POOL_SLOTS = 8
# Airflow's [core] max_map_length, as the project's deployments set it: a run maps one instance of the district
# group per district with something new, and Airflow's default (1,024) fails a run with more at its check
MAX_MAP_LENGTH = 10_000
# imported once by the process that task processes fork from (with LocalExecutor the scheduler's forkserver, with
# CeleryExecutor the worker's main process: clever_attendance.celery_config), so that a task process starts with
# pandas, pandera, Airflow's task runner and the pipeline already loaded instead of importing them again: about a
# second of CPU per task of a changed district (docs/performance.md)
TASK_PRELOAD = ("airflow.sdk.execution_time.task_runner", "airflow.dag_processing.dagbag",
                "clever_attendance.pipeline.factory", "clever_attendance.pipeline.tasks",
                "clever_attendance.pipeline.transform_step", "clever_attendance.operators.upload")
CELERY_CONFIG_OPTIONS = "clever_attendance.celery_config.CELERY_CONFIG"  # [celery] celery_config_options: TASK_PRELOAD
# runs of the polling and event-driven DAGs at once: a district slow or retrying holds its run open, and the next
# run, leaving that district to it, syncs the others on time
RUNS_AT_ONCE = 3
ASSET_URI = "safety_shield://attendance/clever"  # + /<slug>: one asset per district (operators.upload.district_asset)
ASSET_ALIAS = "clever_attendance_delivered"  # every district's asset events, for a DAG that wants any district's
OWNER = "attendance-data-team"
# a district's sync: extract 45 minutes at most, transform 20, upload 45
TIMEOUTS = {"check": timedelta(minutes=10), "sync": timedelta(minutes=110), "upload": timedelta(minutes=45),
            "report": timedelta(minutes=5)}
MAX_RETRY_DELAY = timedelta(minutes=15)
CLEVER_RETENTION_DAYS = 183  # Clever keeps an attendance record six months after its date (docs/clever-api.md)

CLEVER_CONN_TYPE, CLEVER_CONN_ID = "clever", "clever_default"
SAFETY_SHIELD_CONN_TYPE, SAFETY_SHIELD_CONN_ID = "safety_shield", "safety_shield_default"
CHECK_CONCURRENCY = 16  # districts whose last_attendance_sync is read at once, per Clever connection
LEDGER_CONN_ID = "attendance_ledger"  # the attendance ledger's database (hooks.ledger.LedgerHook)
LEDGER_FILE = "attendance_ledger.db"  # in AIRFLOW_HOME, when that connection is not defined: one machine
BOARD_PREFIX = "/attendance-board"  # where the API server serves the Attendance board (plugins/attendance_board.py)
BOARD_PAGE_SIZE = 50  # districts on a page of the board (and rows of its grid), whatever the fleet's size
