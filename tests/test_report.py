"""The run's report without a server: latency from Clever to Safety Shield, and each district's status."""

from __future__ import annotations

import numpy as np

from clever_attendance.pipeline.report import district_row, latency
from clever_attendance.pipeline.reshape import freshness


def micros(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso).timestamp() * 1e6)


def test_latency_counts_only_records_newer_than_the_previous_upload():
    stamps = np.array([micros(f"2026-11-20T1{h}:00:00+00:00") for h in range(10)], dtype=np.int64)
    fresh = freshness(stamps, "2026-11-20T14:30:00Z")  # 15:00 .. 19:00 are new
    assert fresh == {"records": 5, "oldest": "2026-11-20T15:00:00Z", "p05": "2026-11-20T15:00:00Z",
                     "p50": "2026-11-20T17:00:00Z"}
    late = latency("2026-11-20T19:30:00Z", fresh, "2026-11-20T19:00:00Z")
    assert late == {"records": 5, "p50": 9000.0, "p95": 16200.0, "max": 16200.0, "sync": 1800.0}
    assert freshness(stamps, "2026-11-20T23:00:00Z") == {"records": 0}
    assert latency("2026-11-20T19:30:00Z", {"records": 0}, None) is None, "nothing new: no latency"
    assert latency(None, fresh, None) is None, "nothing imported: no latency"


def test_each_district_says_what_happened():
    def status(extract=None, transform=None, upload=None, skipped=None, guard=None) -> str:
        if guard:
            transform = {**transform, "guard": guard}
        return district_row("d", {"extract": extract, "transform": transform, "upload": upload}, skipped)["status"]

    done = {"window": "2026-11-20_2026-11-20"}
    assert status(done, {"counts": {}}, {"rows": 5, "uploads": [{"uploadId": "u1", "status": "completed"}]}) == \
        "uploaded"
    assert status(done, {"counts": {}}, {"rows": 0, "uploads": []}) == "no attendance", "nothing to send"
    staged = {"counts": {}, "csv_path": "file:///s/attendance.csv", "rejects_path": "file:///s/rejects.csv"}
    assert status(done, staged, {"dry_run": True}) == "dry run"
    assert district_row("d", {"extract": done, "transform": staged, "upload": {"dry_run": True}}, None)["import"] \
        == "file:///s/attendance.csv and rejects.csv beside it"
    assert status(skipped="nothing new") == "skipped: nothing new"
    assert status() == "failed at extract"
    assert status(done) == "failed at transform"
    assert status(done, {"counts": {}}) == "failed at upload"
    held = {"dates": {"2026-11-20": {"action": "hold", "schools": ["101"], "decided_by": None, "lines": ["..."]}}}
    assert status(done, {"counts": {}}, {"rows": 5, "uploads": []}, guard=held) == "held for a person"
    rejected = {"dates": {"2026-11-20": {"action": "drop", "schools": ["101"], "decided_by": "ana", "lines": []}}}
    assert status(done, {"counts": {}}, {"rows": 5, "uploads": []}, guard=rejected) == "uploaded", \
        "a date a person rejected before is left out, and the rest is uploaded as usual"


def test_the_report_says_what_was_held_and_why():
    from clever_attendance.pipeline.report import render

    line = "2026-11-18 school 101: absent share jumped: 100 records, 100 students, 100% absent"
    guard = {"dates": {"2026-11-18": {"action": "hold", "schools": ["101"], "decided_by": None, "lines": [line]}}}
    row = district_row("springfield", {"extract": {"window": "w"}, "transform": {"counts": {}, "guard": guard},
                                       "upload": {"rows": 3}}, None)
    assert render([row]).splitlines()[-2:] == ["springfield 2026-11-18: held for a person:", f"  {line}"]
    row["status"] = "dry run"
    assert render([row]).splitlines()[-2] == "springfield 2026-11-18: the guard would hold:"
