"""The attendance ledger: a re-run replaces its rows, retention, schema upgrades (what a real run records: in
test_pipeline)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa
from airflow.sdk import Connection

from clever_attendance.contracts import (
    Counts,
    DayCounts,
    Delivery,
    Freshness,
    GuardAction,
    Guarded,
    HeldDate,
    Import,
    Manifest,
    Posted,
    Staged,
    Status,
    Transformed,
    UploadOrder,
    Window,
)
from clever_attendance.hooks.ledger import ledger_url
from clever_attendance.ledger import progress, schema, tables
from clever_attendance.ledger.delivered import read_at
from clever_attendance.ledger.record import RunEntry, district_dates, write
from clever_attendance.pipeline.report import district_row
from clever_attendance_sandbox.local_airflow import postgres_database


def rows(engine: sa.Engine, table: sa.Table, *where) -> list[dict]:
    with engine.connect() as db:
        return [dict(r._mapping) for r in db.execute(sa.select(table).where(*where))]


def entry(run_id: str, districts: list[str], rejected: int = 2) -> RunEntry:
    made = RunEntry("clever_attendance", run_id, "scheduled")
    for slug in districts:
        made.deliveries.append({"district": slug, "attendance_date": "2026-11-19", "window": "2026-11-19_2026-11-19",
                                "status": "uploaded", "read": 10, "delivered": 10 - rejected, "rejected": rejected,
                                "superseded": 0})
        made.rejects.append(pd.DataFrame({"reason": ["unknown_student"] * rejected, "detail": "",
                                          "attendance_date": "2026-11-19", "school_id": "sc1",
                                          "student_id": [f"s{n}" for n in range(rejected)], "section_id": "",
                                          "last_modified": "2026-11-19T10:00:00Z", "district": slug}))
    return made


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    """An empty ledger database: a SQLite file, or a throwaway database on the real PostgreSQL."""
    if request.param == "sqlite":
        yield sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
        return
    with postgres_database() as url:
        made = sa.create_engine(url)
        yield made
        made.dispose()


def test_recording_a_run_again_replaces_its_rows_and_leaves_other_runs(engine):
    schema.migrate(engine)
    now = datetime(2026, 11, 19, 12, tzinfo=UTC)
    write(engine, entry("run_1", ["a", "b"]), 30, now)
    write(engine, entry("run_2", ["a"]), 30, now)
    write(engine, entry("run_1", ["b"], rejected=1), 30, now)  # a cleared run, recorded again
    by_run = Counter((r["run_id"], r["district"]) for r in rows(engine, tables.deliveries))
    assert by_run == {("run_1", "b"): 1, ("run_2", "a"): 1}
    rejected = Counter((r["run_id"], r["district"]) for r in rows(engine, tables.rejects))
    assert rejected == {("run_1", "b"): 1, ("run_2", "a"): 2}


def test_rejects_older_than_the_retention_are_deleted(engine):
    schema.migrate(engine)
    then = datetime(2026, 10, 1, 12, tzinfo=UTC)
    write(engine, entry("old", ["a"]), 30, then)
    write(engine, entry("recent", ["a"]), 30, then + timedelta(days=29))
    assert Counter(r["run_id"] for r in rows(engine, tables.rejects)) == {"old": 2, "recent": 2}
    write(engine, entry("new", ["a"]), 30, then + timedelta(days=31))
    assert Counter(r["run_id"] for r in rows(engine, tables.rejects)) == {"recent": 2, "new": 2}
    assert {r["run_id"] for r in rows(engine, tables.deliveries)} == {"old", "recent", "new"}, "runs stay"


def recorded(run_id: str, status: str, at: str, sync: str, delivered: int | None = None) -> dict:
    """A deliveries row of district a, 2026-11-19, as version 1 already held it."""
    return {"dag_id": "clever_attendance", "run_id": run_id, "district": "a", "attendance_date": "2026-11-19",
            "status": status, "recorded_at": at, "last_attendance_sync": sync, "delivered": delivered,
            "read": None if delivered is None else delivered + 2, "rejected": None if delivered is None else 2}


def test_a_schema_upgrade_keeps_the_data_and_fills_what_stands_from_the_history(engine):
    assert schema.migrate(engine, to=1) == 1
    history = [recorded("r1", "uploaded", "2026-11-19T10:00:00Z", "2026-11-19T09:30:00Z", 8),
               recorded("r2", "skipped: nothing new", "2026-11-19T10:15:00Z", "2026-11-19T09:30:00Z"),
               recorded("r3", "failed at upload", "2026-11-19T11:00:00Z", "2026-11-19T10:30:00Z", 9)]
    with engine.begin() as db:  # version 1: neither school_days nor district_days exists yet
        db.execute(tables.deliveries.insert(), history)
        assert not sa.inspect(db).has_table("school_days")
    assert schema.migrate(engine, to=4) == 4
    with engine.begin() as db:  # version 4: a hold without the review's columns
        db.execute(sa.text("insert into holds (district, attendance_date, fingerprint, review_run_id) "
                           "values ('a', '2026-11-19', 'f1', 'hold__a')"))
    assert schema.migrate(engine) == schema.VERSION == 8
    hold, = rows(engine, tables.holds)
    assert (hold["review_run_id"], hold["window"], hold["held_sha256"]) == ("hold__a", None, None), (
        "an older hold is kept; a review refuses it (no digest recorded), and the next poll asks again")
    assert [(r["run_id"], r["delivered"]) for r in rows(engine, tables.deliveries)] == [("r1", 8), ("r2", None),
                                                                                        ("r3", 9)]
    stands, = rows(engine, tables.district_days)
    assert (stands["status"], stands["run_id"], stands["last_attendance_sync"]) == (
        "failed at upload", "r3", "2026-11-19T10:30:00Z"), "the latest attempt, and the newest sync it saw"
    assert (stands["delivered"], stands["delivered_run_id"], stands["delivered_sync"]) == (
        8, "r1", "2026-11-19T09:30:00Z"), "what Safety Shield holds: the last upload's"
    with engine.begin() as db:
        db.execute(tables.school_days.insert().values(district="a", school_id="sc1", attendance_date="2026-11-19",
                                                      records=8))
    assert schema.migrate(engine) == 8, "migrating again changes nothing"
    assert len(rows(engine, tables.school_days)) == 1 and len(rows(engine, tables.district_days)) == 1


def test_what_stands_follows_uploads_and_failures_but_not_dry_runs_or_skips(engine):
    schema.migrate(engine)
    now = datetime(2026, 11, 19, 12, tzinfo=UTC)

    def run(run_id: str, status: str, delivered: int, minutes: int) -> None:
        made = entry(run_id, ["a"])
        made.deliveries[0].update(status=status, delivered=delivered,
                                  last_attendance_sync=f"2026-11-19T1{minutes}:00:00Z")
        write(engine, made, 30, now + timedelta(minutes=minutes))

    run("r1", "uploaded", 8, 1)
    run("r2", "dry run", 5, 2)
    run("r3", "skipped: nothing new", 0, 3)
    stands, = rows(engine, tables.district_days)
    assert (stands["status"], stands["run_id"], stands["delivered"]) == ("uploaded", "r1", 8)
    run("r4", "failed at upload", 9, 4)
    run("r4", "uploaded", 9, 5)  # the failed district cleared and run again: the run's rows are replaced
    stands, = rows(engine, tables.district_days)
    assert (stands["status"], stands["run_id"], stands["delivered"], stands["delivered_sync"]) == (
        "uploaded", "r4", 9, "2026-11-19T15:00:00Z")
    assert Counter(r["status"] for r in rows(engine, tables.deliveries)) == {
        "uploaded": 2, "dry run": 1, "skipped: nothing new": 1}


def test_a_window_has_nothing_new_at_the_sync_every_date_of_it_was_read_and_settled_at(engine):
    schema.migrate(engine)
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    made = RunEntry("clever_attendance", "r1", "scheduled")
    statuses_of = {"a": ["uploaded", "no attendance", Status.HELD],
                   "b": ["uploaded", "failed at upload", "uploaded"], "c": ["uploaded", "uploaded"]}
    for district, statuses in statuses_of.items():
        made.deliveries += [{"district": district, "attendance_date": f"2026-11-{18 + n}", "status": status,
                             "last_attendance_sync": "2026-11-20T10:00:00Z"} for n, status in enumerate(statuses)]
    write(engine, made, 30, now)
    later = RunEntry("clever_attendance", "r2", "scheduled")
    later.deliveries.append({"district": "a", "attendance_date": "2026-11-20", "status": "uploaded",
                             "last_attendance_sync": "2026-11-20T11:00:00Z"})
    write(engine, later, 30, now + timedelta(minutes=5))
    week, today = Window.parse("2026-11-18_2026-11-20"), Window.parse("2026-11-20_2026-11-20")
    with engine.connect() as db:
        assert read_at(db, {"a": week, "b": week, "c": week}) == {"a": "2026-11-20T10:00:00Z"}, (
            "a: read at 10:00 at the least (its today again at 11:00); b: a date failed; c: a date never read")
        assert read_at(db, {"a": today, "c": Window.parse("2026-11-18_2026-11-19")}) == {
            "a": "2026-11-20T11:00:00Z", "c": "2026-11-20T10:00:00Z"}


def test_the_deadline_alert_knows_which_districts_of_a_running_run_are_done(engine):
    schema.migrate(engine)
    with engine.connect() as db:
        assert progress.unfinished(db, "clever_attendance", "r1") is None, "before the check: not known"
    progress.plan(engine, "clever_attendance", "r1", {s: "2026-11-20_2026-11-20" for s in "abcde"},
                  {"b": progress.NOTHING_NEW, "e": progress.ELSEWHERE})
    progress.done(engine, "clever_attendance", "r1", "c")
    progress.done(engine, "clever_attendance", "r1", "d", progress.NOTHING_NEW)  # the extract found it so
    with engine.connect() as db:
        assert progress.unfinished(db, "clever_attendance", "r1") == ["a"]
        assert progress.unfinished(db, "clever_attendance", "r2") is None
        assert progress.in_flight(db, ("clever_attendance",), "r2") == {
            "a": ("clever_attendance", "r1", "2026-11-20_2026-11-20")}, "what another run still syncs"
        assert progress.in_flight(db, ("clever_attendance_daily",), "r2") == {}, "another DAG's runs are not asked"
        assert progress.in_flight(db, ("clever_attendance",), "r1") == {}, "not the run's own"


def test_a_ledger_newer_than_the_code_is_refused(tmp_path):
    made = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    schema.migrate(made)
    with made.begin() as db:
        db.execute(tables.versions.update().values(version=schema.VERSION + 1))
    with pytest.raises(RuntimeError, match="newer than this code"):
        schema.migrate(made)


def test_the_connection_names_the_database():
    assert str(ledger_url(Connection(conn_id="attendance_ledger", conn_type="sqlite", host="/tmp/l.db"))) == \
        "sqlite:////tmp/l.db"
    url = ledger_url(Connection(conn_id="attendance_ledger", conn_type="postgres", host="db", port=5432,
                                login="airflow", password="secret", schema="ledger"))
    assert url.render_as_string(hide_password=True) == "postgresql+psycopg2://airflow:***@db:5432/ledger"
    with pytest.raises(ValueError, match="'attendance_ledger'.*postgres or sqlite, not 'http'"):
        ledger_url(Connection(conn_id="attendance_ledger", conn_type="http", host="x"))


def test_rejects_csv_columns_are_the_ledgers():
    """Every column of rejects.csv is kept; none of them holds a name or a student number."""
    from clever_attendance.pipeline.transform import REJECT_COLUMNS

    assert set(REJECT_COLUMNS) <= set(tables.rejects.c.keys())
    assert not {"Student_Number", "student_number", "name", "first_name"} & set(tables.rejects.c.keys())


def test_a_ledger_that_cannot_be_reached_is_named_and_retried(monkeypatch):
    import json

    from clever_attendance.errors import LedgerUnavailableError
    from clever_attendance.hooks.ledger import LedgerHook, ledger_errors
    from clever_attendance.retry_policy import Decision, rule_for
    from clever_attendance_sandbox.local_airflow import free_port

    monkeypatch.setenv("AIRFLOW_CONN_ATTENDANCE_LEDGER", json.dumps(
        {"conn_type": "postgres", "host": "127.0.0.1", "port": free_port(), "login": "nobody", "schema": "ledger"}))
    with pytest.raises(LedgerUnavailableError) as raised:
        with ledger_errors("reading the history of district springfield"), LedgerHook().get_conn().connect():
            pass
    assert str(raised.value) == ("the attendance ledger (connection attendance_ledger) failed reading the history "
                                 "of district springfield: OperationalError")
    assert rule_for(raised.value).decision is Decision.RETRY


def test_a_districts_dates_are_recorded_from_what_its_tasks_handed_on():
    window = Window.parse("2026-11-16_2026-11-19")
    days = {"2026-11-16": DayCounts(10, 9, 1, 0, {"unknown_student": 1}, "d16"),
            "2026-11-17": DayCounts(5, 5, digest="d17"), "2026-11-18": DayCounts(7, 7, digest="d18")}
    staged = Staged("file:///s/attendance.csv", "file:///s/rejects.csv", "file:///s/school_days.csv",
                    "file:///s/identities.npz", Counts(22, 21, 1, 0, {"unknown_student": 1}, 0, days), Freshness(), 1.0)
    held = Guarded(dates={"2026-11-18": HeldDate(GuardAction.HOLD, ("101",), None, ("...",))})
    posted = {"2026-11-16": Posted.NEW, "2026-11-17": Posted.UNCHANGED, "2026-11-18": Posted.CHANGED}
    order = UploadOrder("file:///s/upload.csv", "a", window, "ss1", "safety_shield_default", 0.01, 1)
    transformed = Transformed(staged, held, posted, order)
    manifest = Manifest("file:///s", window, (), 22, 1, {}, "2026-11-19T20:00:00Z", {}, 3.0)
    delivery = Delivery(9, imported=9, completed_at="2026-11-19T21:00:00Z",
                        uploads=(Import("u1", "completed"), Import("u2", "completed")))
    row = district_row("a", manifest, transformed, delivery, None)
    assert row.status is Status.HELD, "some dates held: the others were uploaded"
    dates = {d["attendance_date"]: d for d in district_dates(row, window, manifest, transformed, delivery)}
    assert {day: (d["status"], d["posted"], d["delivered"]) for day, d in dates.items()} == {
        "2026-11-16": ("uploaded", "new", 9), "2026-11-17": ("unchanged", None, 5),
        "2026-11-18": ("held for a person", None, 7), "2026-11-19": ("no attendance", None, 0)}
    first = dates["2026-11-16"]
    assert (first["import_ids"], first["rejected_by_reason"], first["digest"], first["last_attendance_sync"]) == (
        "u1,u2", '{"unknown_student": 1}', "d16", "2026-11-19T20:00:00Z")
