"""`make up`: the sandbox and `airflow standalone` with the project's DAGs, until Ctrl-C.

The UI is on http://localhost:8080 (user admin, the password printed below); the DAGs talk to the sandbox
through connections set in the environment. The daily DAG is unpaused and its last few school days are
triggered, so that the Attendance board (Browse → Clever attendance) has something to show.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime
from datetime import time as clock
from zoneinfo import ZoneInfo

from clever_attendance.demo.__main__ import last_school_day
from clever_attendance.pipeline import config
from clever_attendance.sandbox.local_airflow import LocalAirflow
from clever_attendance.sandbox.process import running_sandbox
from clever_attendance.sandbox.wiring import AIRFLOW, ROOT, airflow, airflow_env, prepare
from clever_attendance.settings import DAILY

WORK = ROOT / ".demo" / "up"
PASSWORD_WAIT = 180
DAYS = 5  # school days synced at start, besides the one the daily DAG's schedule runs when unpaused


def sync_recent_days(env: dict[str, str]) -> list[str]:
    """Trigger the daily DAG for the school days before the last one, then unpause it (its schedule runs the
    last); the attendance dates."""
    LocalAirflow(env, WORK / "standalone.log").wait_for_dag(DAILY)  # parsed by the dag-processor
    settings = config.load()
    tz = ZoneInfo(settings.timezone)
    days, day = [], last_school_day(datetime.now(tz).date())
    for _ in range(DAYS):
        day = last_school_day(day)
        days.append(day)
        airflow(env, "dags", "trigger", DAILY, "--run-id", f"make_up__{day}",
                "--logical-date", datetime.combine(day, clock(2, 0), tz).isoformat())
    airflow(env, "dags", "unpause", DAILY)
    return [str(d) for d in sorted(days)]


def main() -> int:
    WORK.mkdir(parents=True, exist_ok=True, mode=0o700)
    with running_sandbox("--clever-port", "8081", "--upload-port", "8082", workdir=str(WORK)) as sandbox:
        # the Connections form's Test button: one real call to the sandbox's Clever or Safety Shield
        env = {**airflow_env(WORK / "airflow_home", sandbox, WORK / "staging"),
               "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
        prepare(env)
        standalone = subprocess.Popen([AIRFLOW, "standalone"], env=env,
                                      stdout=open(WORK / "standalone.log", "wb"), stderr=subprocess.STDOUT)
        try:
            secret = WORK / "airflow_home" / "simple_auth_manager_passwords.json.generated"
            deadline = time.monotonic() + PASSWORD_WAIT
            while not secret.exists():
                if standalone.poll() is not None or time.monotonic() > deadline:
                    print(f"airflow standalone did not come up; see {WORK}/standalone.log", file=sys.stderr)
                    return 1
                time.sleep(1)
            print(f"Sandbox: Clever {sandbox['clever_url']}, Safety Shield {sandbox['upload_url']}")
            password = json.loads(secret.read_text())["admin"]
            print(f"Airflow UI: http://localhost:8080  user: admin  password: {password}")
            days = sync_recent_days(env)
            print(f"Attendance board: http://localhost:8080/plugin/clever-attendance (Browse → Clever attendance); "
                  f"{DAILY} is syncing {days[0]} to {days[-1]} and the last school day")
            print(f"Logs: {WORK}/standalone.log. Ctrl-C stops everything.")
            standalone.wait()
        except KeyboardInterrupt:
            pass
        finally:
            standalone.send_signal(signal.SIGINT)
            try:
                standalone.wait(30)
            except subprocess.TimeoutExpired:
                standalone.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
