"""`make demo`: the real pipeline, end to end, against the sandbox, on a private Airflow home.

Starts both stand-ins, runs `clever_attendance_daily` for the last school day through Airflow's own
runner, prints the run's report, checks that Safety Shield holds exactly the ground truth, runs the
same date again (forced past the 'nothing new' check) to show that unchanged rows are not posted again, and stops
everything.
"""

from __future__ import annotations

import shutil
import sys
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from clever_attendance.pipeline import config
from clever_attendance.settings import LEDGER_FILE
from clever_attendance_sandbox.generator import PRESETS, District, is_school_day
from clever_attendance_sandbox.process import running_sandbox
from clever_attendance_sandbox.truth import configured_truth
from clever_attendance_sandbox.upload_store import imported_rows, write_counts
from clever_attendance_sandbox.wiring import ROOT, airflow, airflow_env, prepare

WORK = ROOT / ".demo"


def last_school_day(today: date) -> date:
    day = today - timedelta(days=1)
    while not is_school_day(day):
        day -= timedelta(days=1)
    return day


def report_lines(output: str) -> list[str]:
    """The report table out of the task logs."""
    return [line.split("report | ", 1)[1].split(" [clever_attendance.pipeline.tasks]")[0]
            for line in output.splitlines() if "report | " in line]


def check(sandbox: dict, fleet: config.Fleet, day: date) -> bool:
    """Does Safety Shield hold exactly the ground truth of `day` for every district?"""
    now = datetime.fromisoformat(sandbox["now"])
    exact = True
    for district in fleet.districts:
        truth = configured_truth(District(PRESETS[district.slug]), district, day, day, now)
        held = imported_rows(sandbox["db"], district.safety_shield_district_id)
        same = held == truth.rows
        exact &= same
        print(f"  {'OK ' if same else 'BAD'} {district.slug}: Safety Shield holds {len(held)} rows, "
              f"the ground truth has {len(truth.rows)}" + ("" if same else " -- they differ"))
    return exact


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(mode=0o700)
    fleet = config.load()
    tz = ZoneInfo(fleet.timezone)
    day = last_school_day(datetime.now(tz).date())
    tick = datetime.combine(day, time(2, 0), tz).isoformat()  # the daily DAG's schedule tick on that date
    with running_sandbox(workdir=str(WORK)) as sandbox:
        print(f"sandbox: Clever at {sandbox['clever_url']}, Safety Shield at {sandbox['upload_url']}")
        env = airflow_env(WORK / "airflow_home", sandbox, WORK / "staging")
        print("airflow: migrating a private SQLite metadata database in .demo/airflow_home ...")
        prepare(env)
        print(f"airflow: `airflow dags test clever_attendance_daily {tick}` (attendance date {day}) ...")
        output = airflow(env, "dags", "test", "clever_attendance_daily", tick, log=WORK / "run1.log")
        print("\n".join("  " + line for line in report_lines(output)))
        print("Safety Shield against the ground truth:")
        exact = check(sandbox, fleet, day)
        writes = {d.slug: write_counts(sandbox["db"], d.safety_shield_district_id) for d in fleet.districts}
        print("airflow: the same date again, forced past the 'nothing new' check: read again, its rows are unchanged, "
              "so nothing is posted ...")
        output = airflow(env, "dags", "test", "clever_attendance_daily", tick, "--conf", '{"force": true}',
                         log=WORK / "run2.log")
        print("\n".join("  " + line for line in report_lines(output)))
        unchanged = writes == {d.slug: write_counts(sandbox["db"], d.safety_shield_district_id)
                               for d in fleet.districts}
        print(f"  {'OK ' if unchanged else 'BAD'} the second run posted nothing: Safety Shield is as it was")
    print(f"task logs: {WORK}/run1.log, {WORK}/run2.log; the attendance ledger: "
          f"{WORK}/airflow_home/{LEDGER_FILE}")
    print("the Attendance board of these runs and more: `make up`, then "
          "http://localhost:8080/plugin/clever-attendance (Browse → Clever attendance)")
    return 0 if exact and unchanged else 1


if __name__ == "__main__":
    sys.exit(main())
