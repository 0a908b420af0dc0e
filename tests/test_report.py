"""The run's report without a server: latency from Clever to Safety Shield, and each district's status."""

from __future__ import annotations

from datetime import date

import numpy as np

from clever_attendance.contracts import (
    Counts,
    Delivery,
    Freshness,
    GuardAction,
    Guarded,
    HeldDate,
    Import,
    Latency,
    Manifest,
    Posted,
    Staged,
    Transformed,
    UploadOrder,
    Window,
)
from clever_attendance.pipeline.report import district_row, latency, render
from clever_attendance.pipeline.transform_step import freshness

WINDOW = Window(date(2026, 11, 20), date(2026, 11, 20))
EXTRACTED = Manifest("file:///s", WINDOW, ("file:///s/raw_2026-11-20_2026-11-20.csv",), 5, 1, {}, None, {}, 1.0)
STAGED = Staged("file:///s/attendance.csv", "file:///s/rejects.csv", "file:///s/school_days.csv",
                "file:///s/identities.npz", Counts(), Freshness(), 2.0)
ORDER = UploadOrder("file:///s/upload.csv", "d", WINDOW, "ss1", "safety_shield_default", 0.01)


def micros(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso).timestamp() * 1e6)


def transformed(guard: Guarded | None = None, mirror: dict | None = None) -> Transformed:
    return Transformed(STAGED, guard or Guarded(), mirror or {}, ORDER)


def test_latency_counts_only_records_newer_than_the_previous_upload():
    stamps = np.array([micros(f"2026-11-20T1{h}:00:00+00:00") for h in range(10)], dtype=np.int64)
    fresh = freshness(stamps, "2026-11-20T14:30:00Z")  # 15:00 .. 19:00 are new
    assert fresh == Freshness(5, "2026-11-20T15:00:00Z", "2026-11-20T15:00:00Z", "2026-11-20T17:00:00Z")
    late = latency("2026-11-20T19:30:00Z", fresh, "2026-11-20T19:00:00Z")
    assert late == Latency(records=5, p50=9000.0, p95=16200.0, max=16200.0, sync=1800.0)
    assert freshness(stamps, "2026-11-20T23:00:00Z") == Freshness()
    assert latency("2026-11-20T19:30:00Z", Freshness(), None) is None, "nothing new: no latency"
    assert latency(None, fresh, None) is None, "nothing imported: no latency"


def test_each_district_says_what_happened():
    def status(manifest=None, done=None, delivery=None, skipped=None) -> str:
        return district_row("d", manifest, done, delivery, skipped).status

    uploaded = Delivery(5, uploads=(Import("u1", "completed"),))
    assert status(EXTRACTED, transformed(), uploaded) == "uploaded"
    assert status(EXTRACTED, transformed(), Delivery(0)) == "no attendance", "nothing to send"
    assert status(EXTRACTED, transformed(mirror={"2026-11-20": Posted.UNCHANGED}), Delivery(0)) == "unchanged"
    assert status(EXTRACTED, transformed(), Delivery(5, dry_run=True)) == "dry run"
    assert district_row("d", EXTRACTED, transformed(), Delivery(5, dry_run=True), None).import_ == \
        "file:///s/attendance.csv and rejects.csv beside it"
    assert status(skipped="nothing new") == "skipped: nothing new"
    assert status() == "failed at extract"
    assert status(EXTRACTED) == "failed at transform"
    assert status(EXTRACTED, transformed()) == "failed at upload"
    held = Guarded(dates={"2026-11-20": HeldDate(GuardAction.HOLD, ("101",), None, ("...",))})
    assert status(EXTRACTED, transformed(held), Delivery(5)) == "held for a person"
    rejected = Guarded(dates={"2026-11-20": HeldDate(GuardAction.DROP, ("101",), "ana", ())})
    assert status(EXTRACTED, transformed(rejected), Delivery(5)) == "uploaded", \
        "a date a person rejected before is left out, and the rest is uploaded as usual"


def test_the_report_row_crosses_xcom_under_the_names_the_table_and_its_readers_use():
    row = district_row("d", EXTRACTED, transformed(), Delivery(5, imported=5, uploads=(Import("u1", "completed"),)),
                       None).to_xcom()
    assert (row["district"], row["status"], row["import"], row["uploaded"], row["window"]) == (
        "d", "uploaded", "u1 completed", 5, "2026-11-20_2026-11-20")
    assert type(row["status"]) is str


def test_the_report_says_what_was_held_and_why():
    line = "2026-11-18 school 101: absent share jumped: 100 records, 100 students, 100% absent"
    guard = Guarded(dates={"2026-11-18": HeldDate(GuardAction.HOLD, ("101",), None, (line,))})
    row = district_row("springfield", EXTRACTED, transformed(guard), Delivery(3), None)
    assert render([row]).splitlines()[-2:] == ["springfield 2026-11-18: held for a person:", f"  {line}"]
    assert render([district_row("springfield", EXTRACTED, transformed(guard), Delivery(3, dry_run=True), None)]
                  ).splitlines()[-2] == "springfield 2026-11-18: the guard would hold:"
