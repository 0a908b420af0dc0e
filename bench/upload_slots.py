"""Worker slot-seconds one upload holds against a slow Safety Shield import: blocking wait vs deferral.

The upload task posts springfield's CSV of one school day (about 300 rows) to the stand-in, whose
imports take IMPORT_SECONDS. Blocking, the task holds its worker slot for the whole import. Deferrable,
the task holds it only to post the file and, once the trigger has seen the import end, to check the
result; the wait itself runs in the triggerer (here: the trigger run in this process, timed apart).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from airflow.sdk.exceptions import TaskDeferred

from clever_attendance.operators.upload import SafetyShieldUploadOperator
from clever_attendance.pipeline import config
from clever_attendance_sandbox.generator import PRESETS, District
from clever_attendance_sandbox.process import running_sandbox, set_faults
from clever_attendance_sandbox.truth import HEADER, configured_truth

IMPORT_SECONDS = 10.0
RUNS = 3
DAY = date(2026, 11, 16)
NOW = "2026-11-20T23:00:00+00:00"


def csv_file(folder: Path) -> Path:
    from datetime import datetime

    district = config.load().district("springfield")
    truth = configured_truth(District(PRESETS["springfield"]), district, DAY, DAY, datetime.fromisoformat(NOW))
    path = folder / "attendance.csv"
    path.write_text("\n".join([",".join(HEADER), *(",".join(row) for row in truth.rows)]) + "\n")
    return path


def operator(path: Path, n: int, deferrable: bool) -> SafetyShieldUploadOperator:
    # a district id per run: every run posts, none is answered from an earlier run's Idempotency-Key
    return SafetyShieldUploadOperator(task_id="upload", csv_path=str(path), district_slug="springfield",
                                      safety_shield_district_id=f"bench-{deferrable}-{n}",
                                      window=f"{DAY}_{DAY}", deferrable=deferrable)


async def first_event(trigger):
    async for event in trigger.run():
        return event


def main() -> None:
    with running_sandbox("--now", NOW, "--districts", "springfield") as info, \
            tempfile.TemporaryDirectory() as tmp:
        os.environ["AIRFLOW_CONN_SAFETY_SHIELD_DEFAULT"] = json.dumps({
            "conn_type": "safety_shield", "host": info["upload_url"], "password": info["upload_api_key"],
            "extra": {"poll_seconds": 0.5}})
        set_faults(info, "upload", import_seconds=IMPORT_SECONDS)
        path = csv_file(Path(tmp))
        blocking, deferred, waited = [], [], []
        for n in range(RUNS):
            started = time.monotonic()
            operator(path, n, deferrable=False).execute({})
            blocking.append(time.monotonic() - started)

            task = operator(path, n, deferrable=True)
            started = time.monotonic()
            try:
                task.execute({})
                raise RuntimeError("the deferrable upload did not defer")
            except TaskDeferred as deferral:
                posting = time.monotonic() - started
                started = time.monotonic()
                event = asyncio.run(first_event(deferral.trigger))
                waited.append(time.monotonic() - started)
            started = time.monotonic()
            result = task.execute_complete({}, event.payload)
            deferred.append(posting + time.monotonic() - started)
            assert result["imported"] == result["rows"] > 0, result
        print(f"upload of {result['rows']} rows against a {IMPORT_SECONDS:g} s import, median of {RUNS} runs:")
        print(f"  blocking wait:   worker slot held {statistics.median(blocking):6.2f} s")
        print(f"  deferrable:      worker slot held {statistics.median(deferred):6.2f} s "
              f"(triggerer waited {statistics.median(waited):.2f} s)")
        print(f"  runs: blocking {[round(s, 2) for s in blocking]}, deferrable {[round(s, 2) for s in deferred]}")


if __name__ == "__main__":
    main()
