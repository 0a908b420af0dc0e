"""With a real scheduler (airflow standalone, LocalExecutor): a backfill, and a Deadline Alert by e-mail.

The metadata database is PostgreSQL: Airflow refuses to create a backfill on SQLite while the
scheduler runs ("not supported on SQLite under concurrent access").
"""

from __future__ import annotations

from datetime import date

import pytest

from include.attendance import config
from sandbox.local_airflow import postgres_database, running_airflow, wait_for
from sandbox.process import running_sandbox, set_faults
from sandbox.truth import configured_truth
from sandbox.upload_store import imported_rows
from sandbox.wiring import airflow_env
from tests.conftest import NOW, districts_variant

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def cluster(smtp, tmp_path_factory):
    """The sandbox and a standalone Airflow whose polling DAG has a deadline of 3 seconds."""
    work = tmp_path_factory.mktemp("scheduler")
    districts = districts_variant(work / "districts.yaml", poll_deadline_minutes="0.05", task_retries="0",
                                  alert_emails="[attendance-team@district.test]")
    with running_sandbox("--now", NOW.isoformat(), workdir=str(work)) as sandbox, postgres_database() as url:
        env = airflow_env(work / "airflow_home", sandbox, work / "staging", districts, sql_alchemy_conn=url)
        env["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp.connection
        with running_airflow(env, work) as airflow:
            airflow.wait_for_dag("clever_attendance")
            airflow.wait_for_dag("clever_attendance_daily")
            yield sandbox, airflow, config.load(districts)


def test_a_backfill_of_three_school_days_delivers_exactly_their_ground_truth(cluster, districts):
    sandbox, airflow, settings = cluster
    airflow.cli("dags", "unpause", "clever_attendance_daily")
    # the runs' logical dates (02:00 New York, 07:00 UTC) must fall in the range: hence the end of day
    airflow.cli("backfill", "create", "--dag-id", "clever_attendance_daily", "--from-date", "2026-11-17",
                "--to-date", "2026-11-19T23:59:59", "--max-active-runs", "2")
    states = airflow.wait_for_runs("clever_attendance_daily", 3, 600, run_type="backfill")
    assert sorted(states.values()) == ["success"] * 3, states
    logical = airflow.query("select logical_date from dag_run where dag_id = ? and run_type = ?",
                            "clever_attendance_daily", "backfill")
    assert sorted(d.date().isoformat() for (d,) in logical) == ["2026-11-17", "2026-11-18", "2026-11-19"]
    start, end = date(2026, 11, 17), date(2026, 11, 19)
    for district in settings.districts:
        truth = configured_truth(districts[district.slug], district, start, end, NOW)
        # unpausing also made the scheduler run the latest date, Friday the 20th: leave its rows aside
        held = [row for row in imported_rows(sandbox["db"], district.safety_shield_district_id)
                if row[2] != "11/20/2026"]
        assert held == truth.rows, district.slug


def test_a_run_that_outlasts_its_deadline_sends_an_alert(cluster, smtp):
    sandbox, airflow, _ = cluster
    set_faults(sandbox, "clever", latency_ms=1500)  # every Clever answer takes 1.5 s: the run takes longer than 3 s
    smtp.messages.clear()
    airflow.cli("dags", "unpause", "clever_attendance")  # the scheduler creates the latest scheduled run
    subject, body = wait_for("the deadline alert e-mail", lambda: next(
        ((s, b) for s, b in smtp.texts() if "not finished" in s), None), 240, every=1)
    runs = airflow.run_states("clever_attendance")  # one, or two if a new tick came during the test
    assert subject == "[Clever attendance] clever_attendance: not finished 0.05 minutes after it was queued"
    assert any(f"The Clever attendance run {run_id} of clever_attendance missed its deadline" in body
               for run_id in runs)
    assert "is still running" in body
    assert "Shelbyville Unified (slug shelbyville, Clever district 84f02b8aba713f7e89be22b5, " \
           "Safety Shield 1002)" in body
    assert "Springfield Public Schools (slug springfield" in body
    assert "/dags/clever_attendance/runs/scheduled__" in body
    set_faults(sandbox, "clever")
    airflow.wait_for_runs("clever_attendance", 1, 300)
    airflow.cli("dags", "pause", "clever_attendance")
