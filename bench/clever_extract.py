"""CleverHook throughput against the stand-in with 200 ms of latency on every answer.

The goal is to spend the token's rate limit, not more: requests/minute is printed beside
Clever's 1200/minute, with records/s and the 429s met (there should be none).
"""

from __future__ import annotations

import json
import os
import time
from datetime import date

from clever_attendance.hooks.clever import CleverHook
from clever_attendance.pipeline.extract_step import school_order
from clever_attendance_sandbox.process import running_sandbox

START, END = date(2026, 11, 16), date(2026, 11, 20)
LATENCY_MS = 200


def main() -> None:
    faults = json.dumps({"latency_ms": LATENCY_MS})
    with running_sandbox("--districts", "large", "--now", "2026-11-20T23:00:00Z", "--clever-faults", faults) as info:
        os.environ["AIRFLOW_CONN_CLEVER_BENCH"] = json.dumps({
            "conn_type": "http", "host": info["clever_url"], "login": info["clever_client_id"],
            "password": info["clever_client_secret"], "extra": {"oauth_url": info["clever_url"]}})
        warm = CleverHook(info["districts"]["large"], "clever_bench")
        # the order the extract task reads them in: largest first
        schools = school_order([s["id"] for s in warm.iter_schools()], list(warm.iter_students()),
                               list(warm.iter_sections()))
        # a first pass makes the stand-in generate and cache the days, so that only the hook is timed
        sum(len(r) for r in warm.iter_district_attendance(schools, START, END))
        time.sleep(60 - time.time() % 60)  # start with a fresh rate-limit window
        hook = CleverHook(info["districts"]["large"], "clever_bench")
        started = time.perf_counter()
        records = sum(len(r) for r in hook.iter_district_attendance(schools, START, END))
        elapsed = time.perf_counter() - started
        s = hook.stats
        rpm = s.requests / elapsed * 60
        print(f"CleverHook, large district, {len(schools)} schools, {START}..{END}, "
              f"{LATENCY_MS} ms latency, max_concurrency {hook.max_concurrency}")
        print(f"  {s.requests} requests, {records} records in {elapsed:.1f} s")
        print(f"  {rpm:.0f} requests/minute = {rpm / 1200:.0%} of Clever's 1200/minute; "
              f"{records / elapsed:,.0f} records/s; 429s: {s.throttled}; retries: {s.retries}")


if __name__ == "__main__":
    main()
