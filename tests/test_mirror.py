"""Safety Shield mirrors Clever: the nightly run reconciles every date it may read with what Safety Shield was
sent, and posts only the dates that differ: corrections of any age, dates never delivered (through Airflow's own
runner against the sandbox, whose districts correct records days to weeks later)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa

from clever_attendance.hooks.ledger import LedgerHook
from clever_attendance.ledger.tables import district_days
from clever_attendance.pipeline import config
from clever_attendance.pipeline.columns import CSV_COLUMNS, IDENTITY
from clever_attendance_sandbox.faults import FeedBreak
from clever_attendance_sandbox.process import move_clock, set_faults, touch_sync
from clever_attendance_sandbox.testing import districts_variant, report_rows, run
from clever_attendance_sandbox.truth import configured_truth
from clever_attendance_sandbox.upload_store import imported_rows

DAY = date(2026, 11, 19)  # the nightly run's date (a Thursday)
TICK = datetime(2026, 11, 19, 7, 0, tzinfo=UTC)  # 02:00 in New York: the daily DAG's tick of that date
FIRST = DAY - timedelta(days=20)  # reconcile_days 21 in this module's districts file
MISSED = date(2026, 11, 5)  # a school day no run delivered (the pipeline was down, say)
LATER = timedelta(days=15)  # how long after the first deliveries the nightly run reads Clever again


def dates(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def csv_day(day: date) -> str:
    return day.strftime("%m/%d/%Y")


def uploads_of(sandbox: dict, district: config.District) -> list[dict]:
    posted = requests.get(f"{sandbox['upload_url']}/admin/uploads", timeout=10).json()["uploads"]
    return [u for u in posted if u["districtId"] == district.safety_shield_district_id]


@pytest.fixture
def reconciling(pipeline_env, tmp_path, monkeypatch):
    path = districts_variant(tmp_path / "reconcile.yaml", task_retries="0", reconcile_days="21")
    monkeypatch.setenv("ATTENDANCE_DISTRICTS_FILE", str(path))
    return config.load(path)


@pytest.mark.timeout(600)
def test_the_nightly_run_posts_corrections_of_any_age_and_missed_days_and_nothing_else(
        sandbox, districts, reconciling):
    fleet, now = reconciling, datetime.fromisoformat(sandbox["now"])
    move_clock(sandbox, now)
    for start, end in ((FIRST, MISSED - timedelta(days=1)), (MISSED + timedelta(days=1), DAY)):
        assert run("clever_attendance_daily", TICK, start_date=str(start), end_date=str(end)).state == "success"
    window = dates(FIRST, DAY)
    before = {d.slug: {day: configured_truth(districts[d.slug], d, day, day, now).rows for day in window}
              for d in fleet.districts}

    move_clock(sandbox, now + LATER)  # teachers correct records; the district uploads to Clever every school day
    after = {d.slug: {day: configured_truth(districts[d.slug], d, day, day, now + LATER).rows for day in window}
             for d in fleet.districts}
    changed = {slug: {day for day in window if before[slug][day] != after[slug][day]} for slug in before}
    lookback = DAY - timedelta(days=fleet.districts[0].lookback_days)
    for slug, days in changed.items():
        assert len([day for day in days if day < lookback]) >= 2, f"{slug}: corrections older than the lookback"
    expected = {slug: {str(day): "changed" for day in days} | {str(MISSED): "new"} for slug, days in changed.items()}

    posted_before = {d.slug: len(uploads_of(sandbox, d)) for d in fleet.districts}
    preview = run("clever_attendance_daily", TICK, reconcile=True, dry_run=True)
    for slug, row in report_rows(preview).items():
        assert row["status"] == "dry run"
        assert {day: why for day, why in row["mirror"].items() if why != "unchanged"} == expected[slug]
    assert {d.slug: len(uploads_of(sandbox, d)) for d in fleet.districts} == posted_before, "a dry run posts nothing"

    nightly = run("clever_attendance_daily", TICK, reconcile=True)
    assert nightly.state == "success"
    for district in fleet.districts:
        slug = district.slug
        held = imported_rows(sandbox["db"], district.safety_shield_district_id)
        for day in window:
            assert [r for r in held if r[2] == csv_day(day)] == after[slug][day], f"{slug} {day}: as Clever holds it"
        row = report_rows(nightly)[slug]
        assert {day: why for day, why in row["mirror"].items() if why != "unchanged"} == expected[slug]
        sent = sum(u["rowsReceived"] for u in uploads_of(sandbox, district)[posted_before[slug]:])
        assert sent == sum(len(after[slug][date.fromisoformat(day)]) for day in expected[slug]), (
            f"{slug}: the files posted hold the changed and missed dates' rows, and no other")

    posted = {d.slug: len(uploads_of(sandbox, d)) for d in fleet.districts}
    again = run("clever_attendance_daily", TICK, reconcile=True, force=True)
    assert again.state == "success"
    assert {slug: row["status"] for slug, row in report_rows(again).items()} == dict.fromkeys(posted, "unchanged")
    assert {d.slug: len(uploads_of(sandbox, d)) for d in fleet.districts} == posted, "nothing posted again"


@pytest.mark.timeout(300)
def test_a_poll_whose_sync_moved_without_new_data_posts_nothing(sandbox, reconciling):
    """The district uploads an unchanged file to Clever: its last_attendance_sync moves, its records do not."""
    fleet, now = reconciling, datetime.fromisoformat(sandbox["now"])
    move_clock(sandbox, now)
    tick = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
    first = run("clever_attendance", tick)
    assert {slug: row["status"] for slug, row in report_rows(first).items()} == dict.fromkeys(
        (d.slug for d in fleet.districts), "uploaded")
    posted = {d.slug: len(uploads_of(sandbox, d)) for d in fleet.districts}
    moved = {d.slug: touch_sync(sandbox, d.clever_district_id) for d in fleet.districts}

    again = run("clever_attendance", tick)
    assert again.state == "success"
    rows = report_rows(again)
    assert {slug: row["status"] for slug, row in rows.items()} == dict.fromkeys(posted, "unchanged"), (
        "synced, since the sync moved; nothing posted, since no date changed")
    assert all(set(row["mirror"].values()) == {"unchanged"} for row in rows.values())
    assert {d.slug: len(uploads_of(sandbox, d)) for d in fleet.districts} == posted
    assert all(moved.values())


def identities(rows: list[tuple]) -> set[tuple]:
    return {tuple(row[CSV_COLUMNS.index(column)] for column in IDENTITY) for row in rows}


@pytest.mark.timeout(300)
def test_records_deleted_in_the_sis_stay_in_safety_shield_and_are_counted_gone(sandbox, districts, reconciling):
    """Safety Shield's import only inserts and updates: what Clever no longer holds is never dropped silently, the
    ledger counts it per district and date (the board shows it)."""
    fleet, now = reconciling, datetime.fromisoformat(sandbox["now"])
    move_clock(sandbox, now)
    springfield = fleet.district("springfield")
    assert run("clever_attendance_daily", TICK, reconcile=True, districts=["springfield"]).state == "success"
    day = date(2026, 11, 17)
    before = configured_truth(districts["springfield"], springfield, day, day, now).rows
    cut = FeedBreak(district=springfield.clever_district_id, school=districts["springfield"].school_ids()[1],
                    date=day, kind="partial", share=0.9)  # the SIS deleted a tenth of a school's records of the day
    after = configured_truth(replace(districts["springfield"], breaks=(cut,)), springfield, day, day, now).rows
    gone = identities(before) - identities(after)
    assert gone and identities(after) < identities(before)
    set_faults(sandbox, "clever", feed_breaks=[cut.model_dump(mode="json")])
    touch_sync(sandbox, springfield.clever_district_id)  # the district's next upload to Clever

    nightly = run("clever_attendance_daily", TICK, reconcile=True, districts=["springfield"])
    assert nightly.state == "success"
    assert {d: why for d, why in report_rows(nightly)["springfield"]["mirror"].items() if why != "unchanged"} == {
        str(day): "changed"}
    held = [r for r in imported_rows(sandbox["db"], springfield.safety_shield_district_id) if r[2] == csv_day(day)]
    assert identities(held) == identities(before), "Safety Shield still holds them: its import never deletes"
    with LedgerHook().get_conn().connect() as db:
        counted = dict(db.execute(sa.select(district_days.c.attendance_date, district_days.c.gone).where(
            district_days.c.district == "springfield", district_days.c.gone > 0)).all())
    assert counted == {str(day): len(gone)}

    again = run("clever_attendance_daily", TICK, reconcile=True, districts=["springfield"], force=True)
    assert report_rows(again)["springfield"]["status"] == "unchanged"
    with LedgerHook().get_conn().connect() as db:
        assert db.execute(sa.select(sa.func.sum(district_days.c.gone)).where(
            district_days.c.district == "springfield")).scalar() == len(gone), "read again: still gone, once"
