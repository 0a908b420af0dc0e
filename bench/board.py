"""The Attendance board's server time and page size with 1,000 (or 5,000) districts and 180 days in the ledger.

Fills a ledger the way the report task does (`ledger.record.write`: one nightly run per school day, every
district's row of that date, a few rejects each, the run's districts as reconciled; a hold waiting in one
district of 500; not timed), then serves the board from Airflow's own API server app in process (Airflow's
login included: a viewer's cookie) and times each page: the board's first page, its last page, a search, a
district's page and a run's tab. The median of 5 requests after one warm-up; SQLite by default, PostgreSQL with
--postgres.

    python bench/board.py [--districts 1000] [--days 180] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

REQUESTS = 5


def fill(url: str, slugs: list[str], days: int, now: datetime) -> list[str]:
    """One nightly (reconciling) run per school day, back from yesterday, and a hold waiting for a person in one
    district of 500; the run ids, newest last."""
    import random

    import pandas as pd
    import sqlalchemy as sa

    from clever_attendance.hooks.ledger import engine
    from clever_attendance.ledger.progress import DELIVERED
    from clever_attendance.ledger.record import RunEntry, write
    from clever_attendance.ledger.tables import holds, iso, run_districts
    from clever_attendance_sandbox.generator import is_school_day

    ledger, rng, runs = engine(sa.make_url(url)), random.Random(7), []
    school_days = [d for d in (now.date() - timedelta(days=n) for n in range(days * 2, 0, -1)) if is_school_day(d)]
    for day in school_days[-days:]:
        run_id = f"scheduled__{day}T07:00:00+00:00"
        entry = RunEntry("clever_attendance_daily", run_id, "scheduled", reconciled=True)
        rejects = []
        for slug in slugs:
            read = rng.randrange(200, 3000)
            rejected = rng.randrange(0, read // 50)
            status = "uploaded" if rng.random() > 0.01 else "failed at extract"
            entry.deliveries.append({
                "district": slug, "attendance_date": str(day), "window": f"{day}_{day}", "status": status,
                "read": read, "delivered": read - rejected, "rejected": rejected, "superseded": 0,
                "rejected_by_reason": json.dumps({"unknown_student": rejected}),
                "last_attendance_sync": f"{day}T21:45:00Z", "completed_at": f"{day}T21:52:00Z"})
            rejects += [(slug, f"s{n}") for n in range(min(rejected, 5))]
        # one frame for the run's districts (the report task writes one per district: the same rows, faster here)
        entry.rejects.append(pd.DataFrame(rejects, columns=["district", "student_id"]).assign(
            attendance_date=str(day), reason="unknown_student", detail="", school_id="sc1", section_id="",
            last_modified=f"{day}T13:00:00Z"))
        at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=22)
        write(ledger, entry, 30, at)
        with ledger.begin() as db:  # the run reconciled every district (write keeps the last 30 days of these)
            db.execute(run_districts.insert(), [
                {"dag_id": entry.dag_id, "run_id": run_id, "district": slug, "window": f"{day}_{day}",
                 "state": DELIVERED, "recorded_at": iso(at), "reconciled": 1} for slug in slugs])
        runs.append(run_id)
    with ledger.begin() as db:
        db.execute(holds.insert(), [
            {"district": slug, "attendance_date": str(school_days[-1]), "fingerprint": "f1",
             "dag_id": "clever_attendance", "run_id": "manual__held", "review_run_id": f"hold__{slug}",
             "held_at": iso(now), "findings": f"{school_days[-1]} school 101: absent share jumped"}
            for slug in slugs[::500]])
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--districts", type=int, default=1000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--postgres", action="store_true", help="the ledger in a throwaway PostgreSQL database")
    args = parser.parse_args()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="board-bench-")))
        from clever_attendance_sandbox.local_airflow import postgres_database
        from clever_attendance_sandbox.testing import copies_file
        from clever_attendance_sandbox.wiring import ROOT, prepare

        url = stack.enter_context(postgres_database()) if args.postgres else f"sqlite:///{work / 'ledger.db'}"
        districts = copies_file(work / "districts.yaml", args.districts)
        os.environ.update({"AIRFLOW_HOME": str(work / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                           "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                           "ATTENDANCE_DISTRICTS_FILE": str(districts)})
        import sqlalchemy as sa

        parsed = sa.make_url(url)
        os.environ["AIRFLOW_CONN_ATTENDANCE_LEDGER"] = json.dumps(
            {"conn_type": "sqlite", "host": parsed.database} if parsed.drivername == "sqlite" else
            {"conn_type": "postgres", "host": parsed.host or "localhost", "port": parsed.port,
             "login": parsed.username, "password": parsed.password, "schema": parsed.database})
        from clever_attendance.pipeline import config

        slugs = [d.slug for d in config.load(districts).districts]
        started = time.perf_counter()
        runs = fill(url, slugs, args.days, datetime.now(UTC))
        print(f"ledger ({parsed.drivername}): {len(slugs)} districts x {len(runs)} school days filled in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        prepare(dict(os.environ))
        done = subprocess.run([sys.executable, __file__, "--serve", runs[-1], slugs[len(slugs) // 2]], env=os.environ,
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"serving the board failed:\n{done.stderr[-3000:]}")
        print(done.stdout.strip().splitlines()[-1])


def serve(run_id: str, slug: str) -> None:
    """In a process of its own (Airflow reads its settings at first import): time the pages."""
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    from clever_attendance.settings import BOARD_PREFIX

    client = TestClient(create_app(apps="core"))
    client.cookies["_token"] = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="v", role="VIEWER"))
    figures = []
    for name, page in (("board", "/"), ("its last page", "/?page=999999"), ("a search", "/?q=District+12"),
                       ("district", f"/districts/{slug}"), ("run tab", f"/dags/clever_attendance_daily/runs/{run_id}")):
        times = []
        for _ in range(REQUESTS + 1):
            started = time.perf_counter()
            answer = client.get(BOARD_PREFIX + page)
            times.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text[:500]
        figures.append(f"{name} {statistics.median(times[1:]) * 1000:.0f} ms ({len(answer.content) / 1e3:,.0f} kB)")
    print("server time, median of 5: " + "; ".join(figures))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(*sys.argv[2:])
    else:
        main()
