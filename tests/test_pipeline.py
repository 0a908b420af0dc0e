"""The pipeline end to end: the DAGs through Airflow's own runner (dag.test) against the sandbox."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import requests

from clever_attendance.ledger import tables
from clever_attendance.pipeline import config
from clever_attendance_sandbox.process import set_faults
from clever_attendance_sandbox.testing import districts_variant, load_dag, report_rows, run
from clever_attendance_sandbox.truth import configured_truth
from clever_attendance_sandbox.upload_store import imported_rows, write_counts

THURSDAY = date(2026, 11, 19)
TICK = datetime(2026, 11, 19, 7, 0, tzinfo=UTC)  # 02:00 in New York: the daily DAG's tick


def held(sandbox: dict, district: config.District, start: date, end: date) -> list[tuple]:
    """What Safety Shield holds for a district on the dates of a window."""
    days = {f"{d.month:02d}/{d.day:02d}/{d.year}" for d in (date.fromordinal(o) for o in
                                                             range(start.toordinal(), end.toordinal() + 1))}
    return [row for row in imported_rows(sandbox["db"], district.safety_shield_district_id) if row[2] in days]


def task_instance(dag_run, task_id: str, district: str | None = None):
    """A task instance of the run; of a district's task (`district.sync`), the district's instance."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(TaskInstance).where(TaskInstance.run_id == dag_run.run_id, TaskInstance.task_id == task_id)
        if district:
            query = query.where(TaskInstance.rendered_map_index == district)
        ti = session.scalar(query)
        session.expunge(ti)
        return ti


def asset_events(dag_run) -> list[tuple[str, dict]]:
    """(asset URI, extra) of every asset event the run emitted."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [tuple(e) for e in session.execute(
            select(AssetModel.uri, AssetEvent.extra).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_run_id == dag_run.run_id).order_by(AssetEvent.id))]


def uploads_of(sandbox: dict, district: config.District) -> list[dict]:
    posted = requests.get(f"{sandbox['upload_url']}/admin/uploads", timeout=10).json()["uploads"]
    return [u for u in posted if u["districtId"] == district.safety_shield_district_id]


@pytest.mark.timeout(300)
def test_daily_run_delivers_exactly_the_ground_truth_and_a_rerun_changes_nothing(
        sandbox, districts, pipeline_env):
    fleet = config.load()
    dag_run = run("clever_attendance_daily", TICK)
    assert dag_run.state == "success"
    for district in fleet.districts:
        truth = configured_truth(districts[district.slug], district, THURSDAY, THURSDAY, _now(sandbox))
        assert held(sandbox, district, THURSDAY, THURSDAY) == truth.rows, district.slug
    writes = {d.slug: write_counts(sandbox["db"], d.safety_shield_district_id) for d in fleet.districts}
    again = run("clever_attendance_daily", TICK, force=True)
    assert again.state == "success"
    assert writes == {d.slug: write_counts(sandbox["db"], d.safety_shield_district_id) for d in fleet.districts}
    assert not list(pipeline_env.glob("clever_attendance_daily/*/*/*")), "staging is removed after success"


@pytest.mark.timeout(300)
def test_polling_run_delivers_its_trailing_window(sandbox, districts, pipeline_env):
    fleet = config.load()
    dag_run = run("clever_attendance", datetime(2026, 11, 20, 22, 0, tzinfo=UTC))
    assert dag_run.state == "success"
    start = date(2026, 11, 17)  # Friday and the three days before, in each district's time zone
    for district in fleet.districts:
        truth = configured_truth(districts[district.slug], district, start, THURSDAY.replace(day=20), _now(sandbox))
        assert held(sandbox, district, start, THURSDAY.replace(day=20)) == truth.rows, district.slug


@pytest.mark.timeout(300)
def test_dry_run_uploads_nothing_and_keeps_the_csv(sandbox, districts, pipeline_env):
    dag_run = run("clever_attendance_daily", TICK.replace(day=16), dry_run=True, districts=["springfield"])
    assert dag_run.state == "success"
    springfield = config.load().district("springfield")
    assert held(sandbox, springfield, date(2026, 11, 16), date(2026, 11, 16)) == []
    (csv_path,) = pipeline_env.glob("clever_attendance_daily/springfield/2026-11-16_2026-11-16/*/attendance.csv")
    truth = configured_truth(districts["springfield"], springfield, date(2026, 11, 16), date(2026, 11, 16),
                             _now(sandbox))
    assert len(csv_path.read_text().splitlines()) == len(truth.rows) + 1
    assert oct(csv_path.stat().st_mode & 0o777) == "0o600" and oct(csv_path.parent.stat().st_mode & 0o777) == "0o700"
    assert not list(pipeline_env.glob("clever_attendance_daily/shelbyville/*/*")), "shelbyville was not selected"
    row = report_rows(dag_run)["springfield"]
    assert (row["status"], row["import"]) == ("dry run", f"file://{csv_path} and rejects.csv beside it")
    assert asset_events(dag_run) == [], "a dry run delivers nothing"


@pytest.mark.timeout(300)
def test_a_dry_run_of_a_delivered_window_still_previews_it(sandbox, districts, pipeline_env):
    assert run("clever_attendance_daily", TICK.replace(day=17), districts=["springfield"]).state == "success"
    dag_run = run("clever_attendance_daily", TICK.replace(day=17), dry_run=True, districts=["springfield"])
    assert report_rows(dag_run)["springfield"]["status"] == "dry run", "not skipped although nothing is new"
    (csv_path,) = pipeline_env.glob("clever_attendance_daily/springfield/2026-11-17_2026-11-17/*/attendance.csv")
    springfield = config.load().district("springfield")
    truth = configured_truth(districts["springfield"], springfield, date(2026, 11, 17), date(2026, 11, 17),
                             _now(sandbox))
    assert len(csv_path.read_text().splitlines()) == len(truth.rows) + 1


@pytest.mark.timeout(300)
def test_asset_events_name_only_the_districts_that_delivered_and_say_what_changed(sandbox, pipeline_env):
    fleet = config.load()
    first = run("clever_attendance_daily", TICK.replace(day=18), districts=["springfield"])
    assert [uri for uri, _ in asset_events(first)] == ["safety_shield://attendance/clever/springfield"]
    second = run("clever_attendance_daily", TICK.replace(day=18))  # springfield: nothing new since the first
    rows = report_rows(second)
    assert (rows["springfield"]["status"], rows["shelbyville"]["status"]) == ("skipped: nothing new", "uploaded")
    (uri, extra), = asset_events(second)
    shelbyville = rows["shelbyville"]
    assert uri == "safety_shield://attendance/clever/shelbyville"
    assert extra == {"district": "shelbyville", "window": "2026-11-18_2026-11-18",
                     "rows_delivered": shelbyville["uploaded"], "rejected": shelbyville["rejected"],
                     "rejected_by_safety_shield": 0,
                     "import_ids": [u["uploadId"] for u in uploads_of(sandbox, fleet.district("shelbyville"))
                                    if u["uploadId"] in shelbyville["import"]]}
    assert extra["rows_delivered"] > 0 and extra["import_ids"]


@pytest.mark.timeout(300)
def test_a_day_without_attendance_posts_nothing_and_says_so(sandbox, pipeline_env):
    fleet = config.load()
    before = {d.slug: len(uploads_of(sandbox, d)) for d in fleet.districts}
    dag_run = run("clever_attendance_daily", TICK.replace(day=21))  # Saturday
    assert dag_run.state == "success"
    assert {slug: row["status"] for slug, row in report_rows(dag_run).items()} == {
        "shelbyville": "no attendance", "springfield": "no attendance"}
    assert before == {d.slug: len(uploads_of(sandbox, d)) for d in fleet.districts}, "nothing posted"
    assert asset_events(dag_run) == []
    again = run("clever_attendance_daily", TICK.replace(day=21))
    assert {slug: row["status"] for slug, row in report_rows(again).items()} == {
        "shelbyville": "skipped: nothing new", "springfield": "skipped: nothing new"}, "the ledger says it was read"


@pytest.mark.timeout(300)
def test_limits_lowered_at_run_time_still_deliver_everything_on_the_first_try(sandbox, districts, pipeline_env):
    set_faults(sandbox, "upload", max_rows=120)  # the connection says 200,000: Safety Shield answers 413
    dag_run = run("clever_attendance_daily", TICK.replace(day=16), districts=["springfield"], force=True)
    assert dag_run.state == "success"
    springfield = config.load().district("springfield")
    day = date(2026, 11, 16)
    assert held(sandbox, springfield, day, day) == configured_truth(
        districts["springfield"], springfield, day, day, _now(sandbox)).rows
    ti = task_instance(dag_run, "district.sync", "springfield")
    assert (ti.state, ti.try_number) == ("success", 1)
    assert [u["rowsReceived"] for u in uploads_of(sandbox, springfield)][-3:] == [120, 120, 59]


@pytest.mark.timeout(300)
def test_a_window_that_ends_before_it_starts_fails_on_its_first_try_naming_end_date(
        sandbox, pipeline_env, districts_file, smtp, monkeypatch):
    # retries on, so that failing on the first try is the retry policy's doing
    districts_variant(districts_file, task_retries="3", retry_delay_seconds="1",
                      alert_emails="[attendance-team@district.test]")
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp.connection)
    smtp.messages.clear()
    dag_run = run("clever_attendance_daily", TICK, start_date="2026-11-19", end_date="2026-11-10",
                  districts=["springfield"])
    assert dag_run.state == "failed"
    ti = task_instance(dag_run, "check")
    assert (ti.state, ti.try_number) == ("failed", 1)
    (subject, body), = smtp.texts()
    assert subject == "[Clever attendance] clever_attendance_daily: check failed: the run's input"
    assert "Error: field 'end_date': 2026-11-10 is before start_date 2026-11-19" in body
    assert not list(pipeline_env.glob("clever_attendance_daily/springfield/*")), "refused before Clever was read"


@pytest.mark.timeout(300)
def test_airflow_dags_test_runs_the_shipped_districts_file_deadline_alerts_and_all(sandbox, airflow_db, tmp_path):
    from clever_attendance_sandbox.wiring import ROOT, airflow, airflow_env

    shipped = ROOT / "include" / "districts.yaml"
    assert config.load(shipped).deadline_alerts
    assert load_dag("clever_attendance_daily").deadline, "the DAG as the scheduler gets it has its alert"
    env = airflow_env(Path(airflow_db), sandbox, tmp_path / "staging", shipped)
    output = airflow(env, "dags", "test", "clever_attendance_daily", "2026-11-18T02:00:00-05:00")
    assert "DagRun failed" not in output
    reported = [line.split("report | ", 1)[1] for line in output.splitlines() if "report | " in line]
    assert [line.split()[:2] for line in reported[2:4]] == [["shelbyville", "uploaded"], ["springfield", "uploaded"]]


def _now(sandbox: dict) -> datetime:
    return datetime.fromisoformat(sandbox["now"])


def test_a_roster_object_served_twice_is_kept_once_the_last_version(caplog):
    from clever_attendance.pipeline.extract_step import one_per_id

    served = [{"id": "s1", "roles": {"student": {"sis_id": "900001"}}},
              {"id": "s2", "roles": {"student": {"sis_id": "900002"}}},
              {"id": "s1", "roles": {"student": {"sis_id": "900011"}}}]
    with caplog.at_level("WARNING"):
        kept = one_per_id(served, "students", "springfield")
    assert kept == [served[2], served[1]]
    assert caplog.messages == ["Clever district springfield: 1 students served more than once; "
                               "the last version of each is used"]


def ledger_rows(table, *where) -> list[dict]:
    """Rows of a table of the attendance ledger the run wrote to (connection attendance_ledger)."""
    import sqlalchemy as sa

    from clever_attendance.hooks.ledger import LedgerHook

    with LedgerHook().get_conn().connect() as db:
        return [dict(r._mapping) for r in db.execute(sa.select(table).where(*where))]


@pytest.mark.timeout(300)
def test_a_run_records_each_district_and_date_with_the_counts_it_delivered(sandbox, districts, pipeline_env):
    dag_run = run("clever_attendance_daily", TICK)
    assert dag_run.state == "success"
    report = report_rows(dag_run)
    recorded = {r["district"]: r for r in ledger_rows(tables.deliveries, tables.deliveries.c.run_id == dag_run.run_id)}
    assert sorted(recorded) == ["shelbyville", "springfield"]
    progress = ledger_rows(tables.run_districts, tables.run_districts.c.run_id == dag_run.run_id)
    assert {r["district"]: r["state"] for r in progress} == {"shelbyville": "delivered", "springfield": "delivered"}, (
        "what the deadline alert reads: each district's upload said so as it ended")
    for slug, entry in recorded.items():
        district = config.load().district(slug)
        truth = configured_truth(districts[slug], district, THURSDAY, THURSDAY, _now(sandbox))
        row = report[slug]
        assert (entry["attendance_date"], entry["status"], entry["run_type"]) == (str(THURSDAY), "uploaded", "manual")
        assert entry["delivered"] == len(truth.rows) == row["delivered"]
        assert (entry["read"], entry["rejected"], entry["superseded"]) == (row["read"], row["rejected"],
                                                                            row["superseded"])
        assert json.loads(entry["rejected_by_reason"]) == row["rejected_by_reason"]
        assert entry["import_ids"] == ",".join(i.split()[0] for i in row["import"].split(", "))
        assert entry["completed_at"] and entry["last_attendance_sync"]
        stands, = ledger_rows(tables.district_days, tables.district_days.c.district == slug)  # what the board reads
        assert (stands["attendance_date"], stands["status"], stands["delivered"], stands["delivered_run_id"]) == (
            str(THURSDAY), "uploaded", len(truth.rows), dag_run.run_id)
        assert stands["delivered_sync"] == stands["last_attendance_sync"] == entry["last_attendance_sync"]
        # per school, what the delivered file held: records by SchoolID, the way Safety Shield counts them
        schools = ledger_rows(tables.school_days, tables.school_days.c.district == slug)
        assert {s["school_number"]: s["records"] for s in schools} == dict(Counter(r[0] for r in truth.rows))
        absent = Counter(r[0] for r in truth.rows if r[8] == "Absent")
        assert {s["school_number"]: s["absent"] for s in schools} == {s["school_number"]: absent[s["school_number"]]
                                                                    for s in schools}
        assert all(s["students"] <= s["records"] for s in schools)
        kept = ledger_rows(tables.rejects, tables.rejects.c.district == slug)
        assert len(kept) == row["rejected"]
        assert not {"Student_Number", "student_number", "name"} & set(kept[0] if kept else {}), "no student numbers"
