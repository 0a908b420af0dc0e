"""The DAGs on CeleryExecutor: two workers, PostgreSQL, Redis, a task killed mid-run, and the deadline path."""

from __future__ import annotations

import os
import signal
from datetime import date

import pytest

from clever_attendance.pipeline import config
from clever_attendance_sandbox.cluster import running_cluster
from clever_attendance_sandbox.local_airflow import wait_for
from clever_attendance_sandbox.process import running_sandbox, set_faults
from clever_attendance_sandbox.testing import NOW, districts_variant
from clever_attendance_sandbox.truth import configured_truth
from clever_attendance_sandbox.upload_store import imported_rows
from clever_attendance_sandbox.wiring import airflow_env

pytestmark = pytest.mark.timeout(900)
RUN = "celery_thursday"


@pytest.fixture(scope="module")
def cluster(smtp, tmp_path_factory):
    work = tmp_path_factory.mktemp("celery")
    districts = districts_variant(work / "districts.yaml", task_retries="1", retry_delay_seconds="1",
                                  daily_deadline_minutes="0.05", alert_emails="[attendance-team@district.test]")
    with running_sandbox("--now", NOW.isoformat(), workdir=str(work)) as sandbox:
        env = airflow_env(work / "airflow_home", sandbox, work / "shared-staging", districts)
        env["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp.connection
        with running_cluster(env, work) as airflow:
            airflow.wait_for_dag("clever_attendance_daily")
            yield sandbox, airflow, config.load(districts)


def test_a_daily_run_on_two_workers_survives_a_killed_task_and_delivers_the_ground_truth(cluster, districts, smtp):
    sandbox, airflow, fleet = cluster
    set_faults(sandbox, "clever", latency_ms=400)  # slow enough to kill a sync while its extract reads
    smtp.messages.clear()
    airflow.cli("dags", "trigger", "clever_attendance_daily", "--run-id", RUN,
                "--logical-date", "2026-11-19T07:00:00+00:00")
    airflow.cli("dags", "unpause", "clever_attendance_daily")
    victim, index, pid = wait_for("a running sync task with a pid", lambda: next(iter(airflow.query(
        "select task_id, map_index, pid from task_instance where run_id = ? and task_id like ? and state = ? "
        "and pid is not null", RUN, "%.sync", "running")), None), 180, every=0.5)
    os.kill(pid, signal.SIGKILL)
    set_faults(sandbox, "clever")
    states = wait_for(f"run {RUN} to finish", lambda: {s for (s,) in airflow.query(
        "select state from dag_run where run_id = ?", RUN)} & {"success", "failed"}, 600, every=2)
    assert states == {"success"}, airflow.query("select task_id, state, try_number from task_instance "
                                                "where run_id = ?", RUN)
    ((tries,),) = airflow.query("select try_number from task_instance where run_id = ? and task_id = ? and "
                                "map_index = ?", RUN, victim, index)
    assert tries == 2, "the killed task was retried"
    # the run's few tasks (the check, a sync per district, the report) go to whichever worker Celery hands them:
    # maybe all to one
    hosts = {h for (h,) in airflow.query("select distinct hostname from task_instance where run_id = ?", RUN)}
    assert hosts and hosts <= {"worker1", "worker2"}, hosts
    day = date(2026, 11, 19)
    for district in fleet.districts:
        truth = configured_truth(districts[district.slug], district, day, day, NOW)
        held = [row for row in imported_rows(sandbox["db"], district.safety_shield_district_id)
                if row[2] == "11/19/2026"]
        assert held == truth.rows, district.slug
    subject, body = wait_for("the deadline alert sent from a Celery worker", lambda: next(
        ((s, b) for s, b in smtp.texts() if RUN in b), None), 120)
    assert subject == "[Clever attendance] clever_attendance_daily: not finished 0.05 minutes after it was queued"


def test_the_run_is_in_the_ledger_on_postgresql_and_the_board_serves_it_behind_fab_roles(cluster, districts):
    """After the run above: the ledger is the compose deployment's (PostgreSQL, migrated by the init job's
    command), and the board answers by FAB's roles."""
    import json

    import requests
    import sqlalchemy as sa
    from airflow.sdk import Connection

    from clever_attendance.hooks.ledger import ledger_url
    from clever_attendance.ledger import read
    from clever_attendance.settings import BOARD_PREFIX

    sandbox, airflow, fleet = cluster
    assert airflow.query("select state from dag_run where run_id = ?", RUN) == [("success",)], \
        f"run {RUN} of the test above is needed"
    found = json.loads(airflow.env["AIRFLOW_CONN_ATTENDANCE_LEDGER"])
    ledger = sa.create_engine(ledger_url(Connection(conn_id="attendance_ledger", **found)))
    try:
        with ledger.connect() as db:
            recorded = {r["district"]: r for r in read.run_outcome(db, "clever_attendance_daily", RUN)}
    finally:
        ledger.dispose()
    day = date(2026, 11, 19)
    for district in fleet.districts:
        truth = configured_truth(districts[district.slug], district, day, day, NOW)
        row = recorded[district.slug]
        assert (row["attendance_date"], row["status"], row["delivered"]) == (str(day), "uploaded", len(truth.rows))
    base = airflow.env["AIRFLOW__API__BASE_URL"]

    def status(user: str | None) -> requests.Response:
        cookies = {}
        if user:
            answer = requests.post(f"{base}/auth/token", timeout=30,
                                   json={"username": user, "password": airflow.passwords[user]})
            assert answer.status_code == 201, answer.text
            cookies["_token"] = answer.json()["access_token"]
        return requests.get(f"{base}{BOARD_PREFIX}/dags/clever_attendance_daily/runs/{RUN}", cookies=cookies,
                            timeout=60)

    assert status(None).status_code == 401
    assert status("public").status_code == 403, "FAB's Public role reads no DAG"
    for user in ("viewer", "admin"):
        page = status(user)
        assert page.status_code == 200, user
        for slug, row in recorded.items():
            assert f'data-district="{slug}" data-date="{day}"' in page.text and f">{row['delivered']}<" in page.text
