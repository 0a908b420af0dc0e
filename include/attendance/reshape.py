"""The transform step: the staged raw files into attendance.csv and rejects.csv, chunk by chunk.

Attendance dates never interact (a record's identity and a row's identity both hold the date), so
each chunk of the window is transformed on its own and appended: memory stays bounded by a chunk.
"""

from __future__ import annotations

import time

from airflow.sdk import ObjectStoragePath

from include.attendance import records, staging
from include.attendance.config import District
from include.attendance.transform import transform
from include.attendance.window import Window


def _add(total: dict, counts: dict) -> None:
    for key, value in counts.items():
        if isinstance(value, dict):
            _add(total.setdefault(key, {}), value)
        else:
            total[key] = total.get(key, 0) + value


def reshape(district: District, manifest: dict) -> dict:
    """Write the CSV and its rejects beside the raw files; return paths and counts (no student data)."""
    started = time.monotonic()
    folder = ObjectStoragePath(manifest["folder"])
    roster = records.read_roster(lambda name: (folder / f"{name}.csv").open("rb"))
    csv_path, rejects_path = folder / "attendance.csv", folder / "rejects.csv"
    counts: dict = {}
    with staging.open_private(csv_path) as out, staging.open_private(rejects_path) as rejected:
        for n, raw_file in enumerate(manifest["raw_files"]):
            chunk = Window.parse(ObjectStoragePath(raw_file).stem.removeprefix("raw_"))
            with ObjectStoragePath(raw_file).open("rb") as f:
                result = transform(records.read_raw(f), roster, district, chunk.start, chunk.end)
            records.write_frame(result.csv, out, header=n == 0)
            records.write_frame(result.rejects, rejected, header=n == 0)
            _add(counts, result.counts)
    if counts.get("read", 0) != manifest["records"]:
        raise AssertionError(f"district {district.slug}: extract staged {manifest['records']} records, "
                             f"transform read {counts.get('read', 0)}")  # nothing may be lost between steps
    return {"csv_path": str(csv_path), "rejects_path": str(rejects_path), "counts": counts,
            "seconds": round(time.monotonic() - started, 2)}
