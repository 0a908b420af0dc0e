"""One nightly reconciliation of the sandbox's `large` district (60 schools, 50,000 students) over its whole
retention (reconcile_days 183), through Airflow's own runner (`dag.test`, tasks in this process), in a temp
AIRFLOW_HOME (SQLite metadata database and ledger, as in the tests), the sandbox's clock at 2026-11-20T23:00Z.

1. The first reconciliation (`clever_attendance_daily`, `reconcile: true`, the 2026-11-20 tick): Safety Shield
   is empty, every date is `new`. Printed: Clever requests (the extract manifest's `clever` stats), the extract's
   wall minutes (its manifest's `seconds`) and the whole run's (`dag.test`, the DAG file's parse included),
   requests per minute and their share of Clever's 1200/minute per district token (expected about
   `reconcile_share`, 0.5), 429s, CPU seconds of this process (user+sys: the tasks run in it) and of the
   stand-ins (the sandbox's process), peak memory of this process, records read, rows posted to Safety Shield
   (`rowsReceived` of the upload stand-in's uploads) and dates posted.
2. The district's sync moves without any record changing (`touch_sync`), and a second reconciliation reads it
   all again: the same figures, and the rows posted must be 0, or the script exits 1 (its own correctness
   check; no timing is asserted).
3. The polls keep their freshness: the polling window's extract (the extract task's own code, `lookback_days`
   3: 2026-11-17..20, rate share 1) of the same district, so on the same connection and the same district token
   (Clever's rate limit is per token), in a process of its own: once alone, before the first reconciliation,
   and once while the second reconciliation reads attendance. Both read the sandbox cold (it generates days on
   demand and caches few), so the difference is the token's budget and the machine's 2 cores shared. Printed:
   both durations, their requests per minute and 429s.

About an hour on 2 cores with the defaults (each extract reads some 13.8 million records in about 15,000
requests, 26 minutes at the reconciliation's share); `--days 61` takes about half an hour. Both runs share this
process: code changed on disk between them (a DAG file importing what the loaded modules lack) fails the second.

    python bench/reconcile.py [--days 183] [--preset large]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import requests

if TYPE_CHECKING:
    from clever_attendance.pipeline.config import District

NOW = "2026-11-20T23:00:00+00:00"
TICK = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)  # 02:00 in New York: the daily DAG's tick of 2026-11-20
LIMIT = 1200  # Clever's requests per minute per district token


def cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def rows_posted(sandbox: dict, district_id: str) -> int:
    uploads = requests.get(f"{sandbox['upload_url']}/admin/uploads", timeout=60).json()["uploads"]
    return sum(u["rowsReceived"] for u in uploads if u["districtId"] == district_id)


def clever_stats(sandbox: dict) -> dict:
    return requests.get(f"{sandbox['clever_url']}/admin/stats", timeout=30).json()


def extract_manifest(dag_run) -> dict:
    """The extract step's manifest (one district: map index 0), as the run left it in XCom."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalar(select(XComModel.value).where(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id,
            XComModel.task_id == "district.sync", XComModel.map_index == 0, XComModel.key == "manifest"))
    return json.loads(value) if isinstance(value, str) else value


def reconcile(label: str, sandbox: dict, stand_ins: psutil.Process, district: District) -> int:
    """One reconciliation, its figures printed; the rows it posted to Safety Shield."""
    from clever_attendance.contracts import Posted
    from clever_attendance.settings import DAILY
    from clever_attendance_sandbox.testing import report_rows, run

    me = psutil.Process()
    posted, throttled = rows_posted(sandbox, district.safety_shield_district_id), clever_stats(sandbox).get("429", 0)
    cpu_before, sandbox_before, started = cpu(me), cpu(stand_ins), time.perf_counter()
    dag_run = run(DAILY, TICK, reconcile=True)
    wall = time.perf_counter() - started
    manifest, row = extract_manifest(dag_run), report_rows(dag_run)[district.slug]
    posted = rows_posted(sandbox, district.safety_shield_district_id) - posted
    clever, minutes = manifest["clever"], manifest["seconds"] / 60
    why = [w for w in row["mirror"].values() if w != Posted.UNCHANGED]
    print(f"{label}: {dag_run.state}, status {row['status']}, window {manifest['window']}\n"
          f"  Clever: {clever['requests']} requests in {minutes:.1f} min of extract "
          f"({wall / 60:.1f} min the whole run; extract/transform/upload {row['extract_s']:.0f}/"
          f"{row['transform_s'] or 0:.0f}/{row['upload_s'] or 0:.0f} s) = {clever['requests'] / minutes:.0f} "
          f"requests/min = {clever['requests'] / minutes / LIMIT:.2f} of Clever's {LIMIT}/min; 429s: "
          f"{clever['throttled']} met by the extract, {clever_stats(sandbox).get('429', 0) - throttled} answered "
          f"by Clever in all; its threads waited {clever['waited_seconds']:.0f} s in all for the rate\n"
          f"  CPU: {cpu(me) - cpu_before:.0f} s this process (user+sys), {cpu(stand_ins) - sandbox_before:.0f} s the "
          f"stand-ins; peak memory of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB"
          f"\n  records read {row['read']}; rows posted to Safety Shield {posted}; dates posted {len(why)} "
          f"({why.count(Posted.NEW)} new, {why.count(Posted.CHANGED)} changed), "
          f"{len(row['mirror']) - len(why)} unchanged", flush=True)
    return posted


def poll(slug: str) -> None:
    """In a process of its own, as a polling run's extract task: the district's polling window; prints its cost."""
    from clever_attendance.pipeline import config, staging
    from clever_attendance.pipeline.extract_step import extract
    from clever_attendance.pipeline.window import trailing

    fleet = config.load()
    district = fleet.district(slug)
    window = trailing(datetime.fromisoformat(NOW), district.timezone, district.lookback_days)
    folder = staging.run_folder("bench_poll", slug, str(window), f"poll_{os.getpid()}")
    manifest = extract(district, window, folder, None, True, fleet.chunk_days)
    print(json.dumps({"window": str(manifest.window), "seconds": manifest.seconds, "records": manifest.records,
                      **manifest.clever}))


def timed_poll(slug: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--poll", slug], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the poll's extract failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def poll_line(label: str, found: dict) -> str:
    return (f"  {label}: {found['seconds']:.1f} s, {found['requests']} requests "
            f"({found['requests'] / found['seconds'] * 60:.0f}/min), {found['records']} records, "
            f"429s {found['throttled']}, its threads waited {found['waited_seconds']:.0f} s in all for the rate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=183, help="reconcile_days")
    parser.add_argument("--preset", default="large", help="the sandbox's district preset")
    args = parser.parse_args()
    from clever_attendance_sandbox.local_airflow import wait_for
    from clever_attendance_sandbox.process import running_sandbox, touch_sync
    from clever_attendance_sandbox.testing import copies_file
    from clever_attendance_sandbox.wiring import airflow_env, prepare

    with tempfile.TemporaryDirectory(prefix="reconcile-bench-") as tmp, \
            running_sandbox("--now", NOW, "--districts", f"{args.preset}*1", workdir=tmp) as sandbox:
        work = Path(tmp)
        districts = copies_file(work / "districts.yaml", 1, args.preset, reconcile_days=args.days, task_retries=0)
        # Airflow reads its settings at first import: the environment is set before that
        os.environ.update(airflow_env(work / "home", sandbox, work / "staging", districts))
        prepare(dict(os.environ))
        from clever_attendance.pipeline import config

        fleet = config.load(districts)
        district = fleet.districts[0]
        stand_ins = next(p for p in psutil.Process().children() if "clever_attendance_sandbox" in p.cmdline())
        print(f"{args.preset} district, reconcile_days {args.days}, reconcile_share {fleet.reconcile_share}, "
              f"sandbox clock {NOW}", flush=True)
        alone = timed_poll(district.slug)
        reconcile("first reconciliation (Safety Shield empty)", sandbox, stand_ins, district)
        touch_sync(sandbox, district.clever_district_id)
        during: dict = {}

        def poll_while_reading() -> None:
            start = clever_stats(sandbox)["requests"]  # the roster is a dozen requests: past 100, attendance
            wait_for("the reconciliation's attendance reads", lambda: clever_stats(sandbox)["requests"] > start + 100,
                     900)
            during.update(timed_poll(district.slug))

        poller = threading.Thread(target=poll_while_reading, daemon=True)
        poller.start()
        again = reconcile("second reconciliation (sync moved, no record changed)", sandbox, stand_ins, district)
        poller.join()
        print(f"polling-window extract of the same district and token ({alone['window']}):\n"
              f"{poll_line('alone', alone)}\n{poll_line('while the reconciliation reads', during)}")
        if again:
            print(f"FAILED: the second reconciliation posted {again} rows; nothing changed in Clever")
            sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--poll":
        poll(sys.argv[2])
    else:
        main()
