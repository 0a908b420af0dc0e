"""The transform task's work on 1,000,000 raw records of the sandbox's large district.

Stages the records and roster as the extract task would (not timed), then, in a fresh process,
reads them, transforms, writes attendance.csv and rejects.csv, and prints records/s and the
process's peak memory (ru_maxrss).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path

RECORDS = 1_000_000
START = date(2026, 11, 9)
NOW = datetime(2026, 11, 20, 23, tzinfo=UTC)


def stage(folder: Path) -> tuple[date, date]:
    from include.attendance import records
    from sandbox.generator import PRESETS, District

    district = District(PRESETS["large"])
    days = [START + timedelta(days=i) for i in range(12)]
    stream = (r for d in days for s in district.school_ids() for r in district.attendance(s, d, NOW))
    with open(folder / "raw.csv", "w", newline="", encoding="utf-8") as out:
        records.write_records(islice(stream, RECORDS), records.CLEVER_FIELDS, out)
    tables = {"students": map(records.student_row, district.students), "schools": district.schools,
              "sections": district.sections, "courses": district.courses}
    for name, rows in tables.items():
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as out:
            records.write_records(rows, records.ROSTER_FIELDS[name], out)
    return days[0], days[-1]


def measure(folder: Path, start: date, end: date) -> dict:
    from include.attendance import config, records
    from include.attendance.transform import transform

    district = config.load().district("springfield")
    started = time.perf_counter()
    with open(folder / "raw.csv", "rb") as f:
        raw = records.read_raw(f)
    roster = records.read_roster(lambda name: open(folder / f"{name}.csv", "rb"))
    result = transform(raw, roster, district, start, end)
    for name, frame in (("attendance.csv", result.csv), ("rejects.csv", result.rejects)):
        with open(folder / name, "wb") as out:
            records.write_frame(frame, out)
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "counts": result.counts,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--measure":
        folder, start, end = Path(sys.argv[2]), date.fromisoformat(sys.argv[3]), date.fromisoformat(sys.argv[4])
        print(json.dumps(measure(folder, start, end)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-transform-") as tmp:
        start, end = stage(Path(tmp))
        done = subprocess.run([sys.executable, __file__, "--measure", tmp, start.isoformat(), end.isoformat()],
                              check=True, capture_output=True, text=True)
        figures = json.loads(done.stdout.strip().splitlines()[-1])
    counts = figures["counts"]
    print(f"transform, large district, {counts['read']:,} raw records -> attendance.csv + rejects.csv")
    print(f"  {figures['seconds']:.2f} s = {counts['read'] / figures['seconds']:,.0f} records/s; "
          f"peak memory {figures['peak_mb']:,.0f} MB (whole process, ru_maxrss)")
    print(f"  delivered {counts['delivered']:,}, rejected {counts['rejected']:,} {counts['rejected_by_reason']}, "
          f"superseded {counts['superseded']:,}")


if __name__ == "__main__":
    main()
