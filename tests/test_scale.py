"""A thousand districts and more: the DAGs keep the shape of three, as the API server serves it to the grid, and
a run past Airflow's default map length starts every district."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from clever_attendance.sandbox.testing import copies_file, load_dag
from clever_attendance.sandbox.wiring import airflow

DAG_IDS = ("clever_attendance", "clever_attendance_daily", "clever_attendance_events")
GROUP = ["district.extract", "district.transform", "district.upload"]


@pytest.mark.timeout(300)
def test_a_thousand_districts_make_one_mapped_group_in_the_grid(airflow_db, tmp_path, monkeypatch):
    import os

    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    districts = copies_file(tmp_path / "districts.yaml", 1000)
    # reserialize, like the dag-processor, skips a DAG serialized less than min_serialized_dag_update_interval
    # (30 s) ago, and an earlier test may just have serialized the shipped file's DAGs: no interval here
    env = {**os.environ, "ATTENDANCE_DISTRICTS_FILE": str(districts),
           "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "0"}
    airflow(env, "dags", "reserialize")  # as the dag-processor does: the DAGs, serialized into the database
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    client = TestClient(create_app(apps="core"))
    for dag_id in DAG_IDS:
        answer = client.get(f"/ui/grid/structure/{dag_id}")
        assert answer.status_code == 200, answer.text
        shape = [(node["id"], node.get("is_mapped", False), [c["id"] for c in node.get("children") or []])
                 for node in answer.json()]
        assert shape == [("check", False, []), ("district", True, GROUP), ("report", False, [])], dag_id
        params = client.get(f"/api/v2/dags/{dag_id}/details").json()["params"]
        slugs = params["districts"]["schema"]["items"]["enum"]
        assert len(slugs) == 1000 and slugs[0] == "tiny_0001", "the run form still offers every district"
    tasks = client.get("/api/v2/dags/clever_attendance/tasks").json()
    assert tasks["total_entries"] == 5


@pytest.mark.timeout(600)
def test_a_run_with_more_districts_than_airflows_default_map_length_starts_every_one(airflow_db, tmp_path,
                                                                                      monkeypatch):
    """1,025 districts with something new, one more than Airflow's default max_map_length (1,024), which failed
    such a run at its check ("pushed value is too large to map"). The check runs for real and maps every district;
    the districts' own steps and the report are marked done by Airflow's runner instead of run
    (mark_success_pattern), as a thousand real syncs would outlast a test: what is proven is that every
    district's instance is made."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    count = 1025
    monkeypatch.setenv("ATTENDANCE_DISTRICTS_FILE", str(copies_file(tmp_path / "districts.yaml", count)))
    monkeypatch.setenv("AIRFLOW_CONN_ATTENDANCE_LEDGER", json.dumps({"conn_type": "sqlite",
                                                                     "host": str(tmp_path / "ledger.db")}))
    monkeypatch.setenv("ATTENDANCE_STAGING_URL", str(tmp_path / "staging"))
    dag_run = load_dag("clever_attendance").test(logical_date=datetime(2026, 11, 20, 22, tzinfo=UTC),
                                                  mark_success_pattern=r"district\..*|report")
    with create_session() as session:
        found = session.query(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state).filter(
            TaskInstance.run_id == dag_run.run_id).all()
    assert ("check", -1, "success") in found
    for step in ("extract", "transform", "upload"):
        assert sorted(n for task, n, _ in found if task == f"district.{step}") == list(range(count)), step
