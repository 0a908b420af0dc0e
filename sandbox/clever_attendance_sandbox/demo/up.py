"""`make up`: the sandbox and `airflow standalone` with the project's DAGs, until Ctrl-C.

The UI is on http://localhost:8080 (user admin, the password printed below); the DAGs talk to the sandbox
through connections set in the environment. The daily DAG is unpaused and its last few school days are
triggered, so that the Attendance board (Browse → Clever attendance) has something to show.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

from clever_attendance.pipeline import config
from clever_attendance.settings import DAILY
from clever_attendance_sandbox.demo.__main__ import last_school_day
from clever_attendance_sandbox.local_airflow import LocalAirflow, interrupt_on_sigterm, serving_env, stop
from clever_attendance_sandbox.process import running_sandbox
from clever_attendance_sandbox.wiring import AIRFLOW, ROOT, airflow, airflow_env, prepare

WORK = ROOT / ".demo" / "up"
PASSWORD_WAIT = 180
DAYS = 5  # school days synced at start, besides the one the daily DAG's schedule runs when unpaused


def sync_recent_days(env: dict[str, str], work: Path) -> list[str]:
    """Trigger the daily DAG for the school days before the last one, then unpause it (its schedule runs the
    last); the attendance dates."""
    LocalAirflow(env, work / "standalone.log").wait_for_dag(DAILY)  # parsed by the dag-processor
    fleet = config.load()
    tz = ZoneInfo(fleet.timezone)
    days, day = [], last_school_day(datetime.now(tz).date())
    for _ in range(DAYS):
        day = last_school_day(day)
        days.append(day)
        airflow(env, "dags", "trigger", DAILY, "--run-id", f"make_up__{day}",
                "--logical-date", datetime.combine(day, clock(2, 0), tz).isoformat())
    airflow(env, "dags", "unpause", DAILY)
    return [str(d) for d in sorted(days)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make up", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="the Airflow UI's")
    parser.add_argument("--clever-port", default="8081")
    parser.add_argument("--upload-port", default="8082")
    parser.add_argument("--work", type=Path, default=WORK, help="its files: Airflow's home, staging, logs")
    args = parser.parse_args(argv)
    interrupt_on_sigterm()
    work = args.work
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    with running_sandbox("--clever-port", args.clever_port, "--upload-port", args.upload_port,
                         workdir=str(work)) as sandbox:
        # the Connections form's Test button: one real call to the sandbox's Clever or Safety Shield
        env = {**serving_env(airflow_env(work / "airflow_home", sandbox, work / "staging"), args.port),
               "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
        prepare(env)
        # a session of its own: Ctrl-C reaches this process alone, which then stops the whole of it
        standalone = subprocess.Popen([AIRFLOW, "standalone"], env=env, start_new_session=True,
                                      stdout=open(work / "standalone.log", "wb"), stderr=subprocess.STDOUT)
        try:
            secret = work / "airflow_home" / "simple_auth_manager_passwords.json.generated"
            deadline = time.monotonic() + PASSWORD_WAIT
            while not secret.exists():
                if standalone.poll() is not None or time.monotonic() > deadline:
                    print(f"airflow standalone did not come up; see {work}/standalone.log", file=sys.stderr)
                    return 1
                time.sleep(1)
            ui = env["AIRFLOW__API__BASE_URL"]
            print(f"Sandbox: Clever {sandbox['clever_url']}, Safety Shield {sandbox['upload_url']}")
            password = json.loads(secret.read_text())["admin"]
            print(f"Airflow UI: {ui}  user: admin  password: {password}", flush=True)
            days = sync_recent_days(env, work)
            print(f"Attendance board: {ui}/plugin/clever-attendance (Browse → Clever attendance); "
                  f"{DAILY} is syncing {days[0]} to {days[-1]} and the last school day")
            print(f"Logs: {work}/standalone.log. Ctrl-C stops everything.", flush=True)
            standalone.wait()
        except KeyboardInterrupt:
            pass
        finally:
            print("stopping Airflow and the sandbox ...", flush=True)
            stop(standalone)
    return 0


if __name__ == "__main__":
    sys.exit(main())
