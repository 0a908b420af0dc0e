"""`make cluster`: the docker-compose topology without containers, running one daily run.

PostgreSQL and Redis are the machine's own (ATTENDANCE_TEST_POSTGRES / ATTENDANCE_TEST_REDIS say
where); the API server, scheduler, dag-processor and two Celery workers run here, each in its own
folder under .demo/cluster, sharing only the staging root. Prints which worker ran each task and
checks Safety Shield against the ground truth. Its secrets are fresh for each run; the admin's password is printed,
as `make up` does, for the UI while the run lasts.
"""

from __future__ import annotations

import shutil
import sys
from datetime import datetime, time
from zoneinfo import ZoneInfo

from clever_attendance.pipeline import config
from clever_attendance_sandbox.cluster import running_cluster
from clever_attendance_sandbox.demo.__main__ import check, last_school_day
from clever_attendance_sandbox.local_airflow import interrupt_on_sigterm, wait_for
from clever_attendance_sandbox.process import running_sandbox
from clever_attendance_sandbox.wiring import ROOT, airflow_env

WORK = ROOT / ".demo" / "cluster"
RUN = "cluster_demo"


def main() -> int:
    interrupt_on_sigterm()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True, mode=0o700)
    fleet = config.load()
    tz = ZoneInfo(fleet.timezone)
    day = last_school_day(datetime.now(tz).date())
    tick = datetime.combine(day, time(2, 0), tz).isoformat()
    with running_sandbox(workdir=str(WORK)) as sandbox:
        env = airflow_env(WORK / "airflow_home", sandbox, WORK / "shared-staging")
        print("cluster: PostgreSQL database, Redis broker, API server, scheduler, dag-processor, 2 Celery workers ...")
        with running_cluster(env, WORK) as airflow:
            print(f"Airflow UI: {airflow.env['AIRFLOW__API__BASE_URL']}  user: admin  "
                  f"password: {airflow.passwords['admin']}  (until the run ends)")
            airflow.wait_for_dag("clever_attendance_daily")
            # trigger, then unpause: unpausing first would make the scheduler create the same date's run itself
            airflow.cli("dags", "trigger", "clever_attendance_daily", "--run-id", RUN, "--logical-date", tick)
            airflow.cli("dags", "unpause", "clever_attendance_daily")
            print(f"cluster: clever_attendance_daily for {day} ...")
            wait_for("the run to finish", lambda: {s for (s,) in airflow.query(
                "select state from dag_run where run_id = ?", RUN)} & {"success", "failed"}, 600, every=2)
            for task_id, label, state, host in airflow.query(
                    "select task_id, rendered_map_index, state, hostname from task_instance where run_id = ? "
                    "order by start_date", RUN):
                print(f"  {task_id:20} {label or '':14} {state:8} on {host}")
            exact = check(sandbox, fleet, day)
    print(f"logs: {WORK}/*.log")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
