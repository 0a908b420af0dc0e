"""How fast the Clever stand-in answers a full 1000-record attendance page (large district).

Prints cold (first read of a school day, generation included) and warm figures; the sandbox
must never be the bottleneck of an extraction benchmark.
"""

from __future__ import annotations

import statistics
import time
from datetime import date, timedelta

import requests

from clever_attendance_sandbox.generator import PRESETS, District
from clever_attendance_sandbox.process import running_sandbox

DAYS = [date(2026, 11, 16) + timedelta(days=i) for i in range(5)]


def main() -> None:
    district = District(PRESETS["large"])
    with running_sandbox("--districts", "large", "--now", "2026-11-20T23:00:00Z") as info:
        session = requests.Session()
        tok = session.get(info["clever_url"] + "/oauth/tokens", params={"owner_type": "district"},
                          auth=(info["clever_client_id"], info["clever_client_secret"]),
                          timeout=60).json()["data"][0]["access_token"]
        session.headers["Authorization"] = f"Bearer {tok}"
        session.get(info["clever_url"] + "/v3.1/schools", timeout=120)  # builds the roster once
        schools = sorted(district.period_schools)[:8]  # per-period: over 5,000 records a day
        cold, warm = [], []
        for school in schools:
            for day in DAYS:
                url = f"{info['clever_url']}/v3.1/attendance/schools/{school}"
                params = {"date_range_start": day.isoformat(), "date_range_end": day.isoformat(),
                          "limit": 1000}
                for n in range(3):
                    started = time.perf_counter()
                    answer = session.get(url, params=params, timeout=60)
                    elapsed = (time.perf_counter() - started) * 1000
                    assert answer.status_code == 200, answer.status_code
                    assert len(answer.json()["data"]) == 1000, "a full page"
                    (cold if n == 0 else warm).append(elapsed)
        print(f"clever stand-in, 1000-record attendance page, {len(warm)} warm / {len(cold)} cold requests")
        print(f"  warm: p50 {statistics.median(warm):.1f} ms, p95 {statistics.quantiles(warm, n=20)[-1]:.1f} ms")
        print(f"  cold (school day generated): p50 {statistics.median(cold):.1f} ms, max {max(cold):.1f} ms")


if __name__ == "__main__":
    main()
