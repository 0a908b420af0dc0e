"""What a poll costs with N districts, and how fresh the event-driven path is, with a real scheduler.

Each district is a copy of the sandbox's `tiny` district (2 schools, 12 students). For parsing (N = 10,
100, 1000 by default) it times the DAG file in a DagBag, as the dag-processor and every task process
parse it, and in a fresh interpreter (Airflow's own import included). For runs (N = 10, 200, 1000) it
starts the sandbox, with its clock at noon of the last school day (the polling DAG's one scheduled run), and
`airflow standalone` (scheduler, dag-processor, triggerer, API server; LocalExecutor; PostgreSQL) set
up as `make up` sets it (the task modules preloaded: settings.TASK_PRELOAD), then:

1. unpauses the polling DAG: its first run finds every district new (a forced run's work);
2. triggers it again over the same window: nothing is new (the check skips every district);
3. moves the sync of a quarter of the districts (the sandbox's clock of each, to its next upload) and
   triggers a poll: what a 15-minute poll does when a quarter of the fleet synced since the last;
4. unpauses the event-driven DAG, waits for the watcher's baseline reading, then moves the sync of a
   few districts at spread-out moments and measures freshness: from the moment Clever holds the new
   sync to Safety Shield's `completedAt`.

Wall time is the DAG run's; CPU seconds are those of every Airflow process (the sandbox's own are not
counted), per district with something new, and split by process: the task processes, their
supervisors (the executor's workers), the API server (the Execution API the tasks call), the
scheduler, the dag-processor, the triggerer and the rest (the forkserver, the log server). Every
district's rows are checked against the ground truth.

    python bench/poll_scale.py [--parse 10,100,1000] [--runs 10,200,1000] [--moves 10] [--changed 0.25]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path

import psutil
import requests

from clever_attendance.contracts import Window
from clever_attendance.pipeline import config
from clever_attendance.pipeline.window import trailing
from clever_attendance.settings import EVENTS, POLL, REVIEW
from clever_attendance_sandbox.generator import District, is_school_day, presets
from clever_attendance_sandbox.local_airflow import interrupt_on_sigterm, postgres_database, running_airflow, wait_for
from clever_attendance_sandbox.process import move_clock, running_sandbox
from clever_attendance_sandbox.testing import copies_file
from clever_attendance_sandbox.truth import configured_truth
from clever_attendance_sandbox.upload_store import imported_rows
from clever_attendance_sandbox.wiring import ROOT, airflow_env

PARSE = """
import json, time
t0 = time.perf_counter()
import airflow.sdk
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
bag = DagBag(dag_folder={dags!r})
t2 = time.perf_counter()
bag = DagBag(dag_folder={dags!r})
t3 = time.perf_counter()
print(json.dumps({{"airflow": t1 - t0, "first": t2 - t1, "again": t3 - t2, "dags": sorted(bag.dags),
                  "errors": list(bag.import_errors.values()), "tasks": sum(len(d.tasks) for d in bag.dags.values())}}))
"""


def parse_times(count: int, work: Path) -> dict:
    """Seconds to parse the DAG file with `count` districts: the first time in a process (the file's imports
    included) and again (what a dag-processor re-parse costs), and Airflow's own import apart."""
    env = {**os.environ, "ATTENDANCE_DISTRICTS_FILE": str(copies_file(work / f"parse_{count}.yaml", count)),
           "AIRFLOW_HOME": str(work / "parse_home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run([sys.executable, "-c", PARSE.format(dags=str(ROOT / "dags"))], env=env, check=True,
                         capture_output=True, text=True).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert not found["errors"] and found["dags"] == sorted([POLL, "clever_attendance_daily", EVENTS, REVIEW]), found
    return found


PARTS = ("task processes", "supervisors", "API server", "scheduler", "dag-processor", "triggerer", "other")


def _part(cmdline: str) -> str | None:
    """Which part of Airflow a process is, by the title Airflow gives it; None for a live task process."""
    if "LocalExecutor" in cmdline:
        return "supervisors"  # an executor worker supervises one task process at a time, forked from it
    if cmdline.startswith("airflow worker -- "):
        return None  # a task process: counted once its supervisor has reaped it, as that supervisor's child
    return next((part for part, title in (("API server", "api_server"), ("scheduler", "scheduler"),
                                          ("dag-processor", "dag-processor"), ("triggerer", "triggerer"))
                 if title in cmdline), "other")


def cpu_parts(root: int) -> dict[int, tuple[str, float, float]]:
    """Per live process of the tree: its part, its own CPU seconds and its reaped children's."""
    found = {}
    try:
        processes = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    except psutil.NoSuchProcess:
        return found
    for process in processes:
        try:
            part, t = _part(" ".join(process.cmdline())), process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        if part:
            found[process.pid] = (part, t.user + t.system, t.children_user + t.children_system)
    return found


def breakdown(before: dict[int, tuple[str, float, float]], after: dict[int, tuple[str, float, float]]
              ) -> dict[str, float]:
    """CPU seconds per part between two readings; a supervisor's reaped children are task processes."""
    spent = dict.fromkeys(PARTS, 0.0)
    for pid, (part, own, children) in after.items():
        _, own_before, children_before = before.get(pid, (part, 0.0, 0.0))
        spent[part] += own - own_before
        spent["task processes" if part == "supervisors" else part] += children - children_before
    return spent


def timed_run(airflow, dag_id: str, run_id: str, root: int, seconds: float) -> dict:
    """Wall (the run's start to end) and Airflow's CPU seconds while the run ran."""
    def state() -> str | None:
        found = airflow.query("select state from dag_run where dag_id = ? and run_id = ?", dag_id, run_id)
        return found[0][0] if found else None
    wait_for(f"run {run_id} to start", lambda: state() in ("running", "success", "failed"), seconds, every=0.2)
    before = cpu_parts(root)
    wait_for(f"run {run_id} to end", lambda: state() in ("success", "failed"), seconds, every=0.5)
    time.sleep(2)  # the last supervisor reaps its task process
    parts = breakdown(before, cpu_parts(root))
    (start, end, final), = airflow.query("select start_date, end_date, state from dag_run where dag_id = ? and "
                                         "run_id = ?", dag_id, run_id)
    return {"state": final, "wall": (end - start).total_seconds(), "cpu": sum(parts.values()), "parts": parts}


def check_rows(sandbox: dict, fleet: config.Fleet, window: Window, clocks: dict[str, datetime],
               slugs: list[str]) -> int:
    """Every listed district's rows of the window against the ground truth; the number of rows checked."""
    days = {f"{d.month:02d}/{d.day:02d}/{d.year}" for d in
            (window.start.fromordinal(o) for o in range(window.start.toordinal(), window.end.toordinal() + 1))}
    specs = {spec.slug: spec for spec in presets([f"tiny*{len(fleet.districts)}"])}
    checked = 0
    for slug in slugs:
        district = fleet.district(slug)
        truth = configured_truth(District(specs[slug]), district, window.start, window.end, clocks[slug])
        held = [row for row in imported_rows(sandbox["db"], district.safety_shield_district_id) if row[2] in days]
        assert held == truth.rows, f"{slug}: {len(held)} rows held, {len(truth.rows)} in the ground truth"
        checked += len(held)
    return checked


def completed_at(sandbox: dict, district_id: str, after: str) -> datetime | None:
    uploads = requests.get(f"{sandbox['upload_url']}/admin/uploads", timeout=30).json()["uploads"]
    done = [u["completedAt"] for u in uploads if u["districtId"] == district_id and u.get("completedAt")
            and u["completedAt"] > after]
    return datetime.fromisoformat(max(done).replace("Z", "+00:00")) if done else None


def runs(count: int, moves: int, changed: float, work: Path) -> dict:
    # Clever's clock at noon of the last school day: its later uploads that day are in the past, so a sync can move
    # on whatever day the bench runs. The polling DAG's one scheduled run is that noon's; the bench triggers the
    # next polls itself. A copy of `tiny` has so small a roster that its few unknown students can pass the shipped
    # 10% reject threshold.
    tz = District(presets(["tiny*1"])[0]).tz
    day = datetime.now(tz).date() - timedelta(days=1)
    while not is_school_day(day):
        day -= timedelta(days=1)
    now = datetime.combine(day, dt_time(12), tz).astimezone(UTC)
    folder = work / f"runs_{count}"
    folder.mkdir()
    districts_file = copies_file(folder / "districts.yaml", count, max_pipeline_reject_share=0.5,
                                 poll_schedule=f"0 12 {day.day} {day.month} *")
    fleet = config.load(districts_file)
    with running_sandbox("--now", now.isoformat(), "--districts", f"tiny*{count}", workdir=str(folder)) as sandbox, \
            postgres_database() as url:
        env = airflow_env(folder / "home", sandbox, folder / "staging", districts_file, sql_alchemy_conn=url)
        env["AIRFLOW__CORE__PARALLELISM"] = "16"
        with running_airflow(env, folder) as airflow:
            root = airflow.pid
            for dag_id in (POLL, EVENTS):
                airflow.wait_for_dag(dag_id, 300)
            airflow.cli("dags", "unpause", POLL)
            (first, tick), = wait_for("the polling DAG's first scheduled run", lambda: airflow.query(
                "select run_id, logical_date from dag_run where dag_id = ? and run_type = 'scheduled' "
                "order by logical_date limit 1", POLL), 120)
            forced = timed_run(airflow, POLL, first, root, 3 * 3600)
            some = fleet.districts[0]  # every copy has the shipped time zone and lookback
            window = trailing(tick, some.timezone, some.lookback_days)
            clocks = dict.fromkeys(sandbox["districts"], now)
            rows = check_rows(sandbox, fleet, window, clocks, list(sandbox["districts"]))
            airflow.cli("dags", "trigger", POLL, "--run-id", "nothing_new", "--conf",
                        json.dumps({"start_date": str(window.start), "end_date": str(window.end)}))
            quiet = timed_run(airflow, POLL, "nothing_new", root, 1800)
            moved = move_syncs(sandbox, round(count * changed), now)
            end = max(trailing(clock, some.timezone, some.lookback_days).end for clock in moved.values())
            airflow.cli("dags", "trigger", POLL, "--run-id", "some_new", "--conf",
                        json.dumps({"start_date": str(window.start), "end_date": str(end)}))
            some_new = timed_run(airflow, POLL, "some_new", root, 3600)
            clocks.update(moved)
            rows += check_rows(sandbox, fleet, Window(window.start, end), clocks, list(moved))
            fresh = freshness(airflow, sandbox, fleet, count, min(moves, count - len(moved)), now, set(moved))
    return {"count": count, "forced": forced, "nothing_new": quiet, "some_new": some_new, "changed": len(moved),
            "rows_checked": rows + fresh.pop("rows"), **fresh}


def move_syncs(sandbox: dict, count: int, now: datetime) -> dict[str, datetime]:
    """Move the sync of `count` districts chosen at random to their next upload; the clock of each."""
    specs = {spec.slug: spec for spec in presets([f"tiny*{len(sandbox['districts'])}"])}
    moved = {}
    for slug in random.Random(11).sample(sorted(sandbox["districts"]), count):
        moved[slug] = District(specs[slug]).next_upload(now) + timedelta(seconds=30)
        move_clock(sandbox, moved[slug], sandbox["districts"][slug])
    return moved


def freshness(airflow, sandbox: dict, fleet: config.Fleet, count: int, moves: int, now: datetime,
              skip: set[str]) -> dict:
    """Seconds from a district's new sync in Clever to its import's completedAt, for `moves` districts (none of
    those to `skip`, already moved to their next upload)."""
    if not moves:
        return {"moves": 0, "rows": 0}
    def reads() -> int:
        return requests.get(f"{sandbox['clever_url']}/admin/stats", timeout=30).json().get("district_reads", 0)
    before = reads()
    airflow.cli("dags", "unpause", EVENTS)
    wait_for("the watcher's baseline reading", lambda: reads() >= before + count, 300)
    rng = random.Random(7)
    chosen = rng.sample(sorted(set(sandbox["districts"]) - skip), moves)
    specs = {spec.slug: spec for spec in presets([f"tiny*{count}"])}
    moved: dict[str, tuple[datetime, datetime]] = {}
    for slug in chosen:  # spread over two watcher intervals, so the moves meet the watcher at any phase
        time.sleep(rng.uniform(0, 2 * fleet.watch_interval_seconds / moves))
        clock = District(specs[slug]).next_upload(now) + timedelta(seconds=30)
        move_clock(sandbox, clock, sandbox["districts"][slug])
        moved[slug] = (datetime.now(UTC), clock)
    started = min(at for at, _ in moved.values()).isoformat().replace("+00:00", "Z")
    latencies = {}

    def all_imported() -> bool:
        for slug, (at, _) in moved.items():
            done = completed_at(sandbox, fleet.district(slug).safety_shield_district_id, started)
            if done and slug not in latencies:
                latencies[slug] = (done - at).total_seconds()
        return len(latencies) == len(moved)
    wait_for("every moved district's import", all_imported, 900, every=1)
    airflow.cli("dags", "pause", EVENTS)
    rows = 0
    for slug, (_, clock) in moved.items():
        district = fleet.district(slug)  # the window of the moved sync's day, as the check chose it
        rows += check_rows(sandbox, fleet, trailing(clock, district.timezone, district.lookback_days),
                           {slug: clock}, [slug])
    values = sorted(latencies.values())
    return {"moves": len(values), "fresh_p50": statistics.median(values),
            "fresh_p95": values[min(len(values) - 1, round(0.95 * (len(values) - 1)))], "fresh_max": values[-1],
            "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parse", default="10,100,1000")
    parser.add_argument("--runs", default="10,200,1000")
    parser.add_argument("--moves", type=int, default=10, help="districts whose sync moves, per N, for freshness")
    parser.add_argument("--changed", type=float, default=0.25, help="share of the districts new in the third poll")
    args = parser.parse_args()
    interrupt_on_sigterm()  # a `kill` of the bench stops the Airflow and the sandbox it started
    with tempfile.TemporaryDirectory(prefix="poll-scale-") as tmp:
        work = Path(tmp)
        print("districts  DAG file parse: first / again (s)  fresh interpreter, Airflow import included (s)  tasks")
        for count in (int(n) for n in args.parse.split(",") if n):
            found = parse_times(count, work)
            print(f"{count:>9}  {found['first']:>10.2f} / {found['again']:.2f}  "
                  f"{found['airflow'] + found['first']:>38.2f}  {found['tasks']:>17}", flush=True)
        for count in (int(n) for n in args.runs.split(",") if n):
            result = runs(count, args.moves, args.changed, work)
            print(f"\nN={count}: {result['rows_checked']} rows checked against the ground truth")
            for name, run, new in (("every district new", result["forced"], count),
                                   ("nothing new", result["nothing_new"], count),
                                   (f"{result['changed']} new", result["some_new"], result["changed"])):
                parts = ", ".join(f"{part} {seconds / new:.3f}" for part, seconds in run["parts"].items())
                print(f"  {name}: {run['state']}, wall {run['wall']:.0f} s, CPU {run['cpu'] / new:.3f} s per "
                      f"district{' with something new' if new != count else ''} ({parts})", flush=True)
            if result["moves"]:
                print(f"  freshness over {result['moves']} moved syncs: p50 {result['fresh_p50']:.0f} s, "
                      f"p95 {result['fresh_p95']:.0f} s, max {result['fresh_max']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
