"""The transform task's work on 1,000,000 raw records of the sandbox's large district.

Stages the records and roster as the extract task would (not timed), in one raw file (the 12 school
days in one chunk: the most the task ever holds at once), then, in a fresh process per run, times the
transform task's own code (`transform_staged`: read, transform, write attendance.csv and rejects.csv) and
prints records/s and the process's peak memory (ru_maxrss). Three runs; the median is the figure.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path

RECORDS = 1_000_000
DAYS = 12
RUNS = 3
START = date(2026, 11, 9)
NOW = datetime(2026, 11, 20, 23, tzinfo=UTC)


def stage(folder: Path) -> Path:
    """The roster tables and one raw file of the 12 days, as the extract task writes them; returns the raw file."""
    from clever_attendance.contracts import Window
    from clever_attendance.pipeline import staged_csv
    from clever_attendance.pipeline.columns import CLEVER_FIELDS
    from clever_attendance_sandbox.generator import PRESETS, District

    district = District(PRESETS["large"])
    days = [START + timedelta(days=i) for i in range(DAYS)]
    stream = (r for d in days for s in district.school_ids() for r in district.attendance(s, d, NOW))
    raw_file = folder / f"raw_{Window(days[0], days[-1])}.csv"
    with open(raw_file, "w", newline="", encoding="utf-8") as out:
        staged_csv.write_records(islice(stream, RECORDS), CLEVER_FIELDS, out)
    roster = {"students": district.students, "schools": district.schools, "sections": district.sections,
              "courses": district.courses}
    staged_csv.write_roster(roster, lambda name: open(folder / f"{name}.csv", "w", newline="", encoding="utf-8"))
    return raw_file


def measure(raw_file: Path) -> dict:
    """One timed run of the transform task's code, in this (fresh) process."""
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

    from clever_attendance.contracts import Manifest, Window
    from clever_attendance.pipeline import config
    from clever_attendance.pipeline.columns import CLEVER_FIELDS
    from clever_attendance.pipeline.schemas import CleverAttendance
    from clever_attendance.pipeline.transform_step import transform_staged

    district = config.load().district("springfield")
    started = time.perf_counter()
    # once a process, not per record: pandera imports its pandas backend (and hypothesis) at its first
    # validation, Airflow's object storage its file system at its first path
    CleverAttendance.validate(pd.DataFrame(columns=CLEVER_FIELDS, dtype="str"))
    ObjectStoragePath(raw_file).exists()
    warm_up = time.perf_counter() - started
    window = Window.parse(raw_file.stem.removeprefix("raw_"))
    manifest = Manifest(str(raw_file.parent), window, (str(raw_file),), RECORDS, 0, {}, None, {}, 0.0)
    started = time.perf_counter()
    result = transform_staged(district, manifest)
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "warm_up": warm_up, "counts": result.counts.to_xcom(),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        print(json.dumps(measure(Path(sys.argv[2]))))
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--stage":
        print(stage(Path(sys.argv[2])))
        return
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-transform-") as tmp:
        # staged by a process of its own, which returns its gigabytes of generator state before the runs
        done = subprocess.run([sys.executable, __file__, "--stage", tmp], check=True, capture_output=True, text=True)
        raw_file = Path(done.stdout.strip().splitlines()[-1])
        os.sync()  # the extract writes over minutes, so its pages are on disk long before the transform runs
        for _ in range(RUNS):
            done = subprocess.run([sys.executable, __file__, "--measure", str(raw_file)],
                                  check=True, capture_output=True, text=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    figures = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
    counts = figures["counts"]
    print(f"transform, large district, {counts['read']:,} raw records -> attendance.csv + rejects.csv "
          f"(median of {RUNS} runs, each in a fresh process)")
    print(f"  {figures['seconds']:.2f} s = {counts['read'] / figures['seconds']:,.0f} records/s; "
          f"peak memory {max(run['peak_mb'] for run in runs):,.0f} MB (the largest run's whole process, ru_maxrss)")
    print("  runs: " + ", ".join(f"{run['seconds']:.2f} s" for run in runs)
          + f"; not timed, once a process: {figures['warm_up']:.2f} s of first uses")
    print(f"  delivered {counts['delivered']:,}, rejected {counts['rejected']:,} {counts['rejected_by_reason']}, "
          f"superseded {counts['superseded']:,}")


if __name__ == "__main__":
    main()
