"""A thousand districts: the DAGs keep the shape of three, as the API server serves it to the grid."""

from __future__ import annotations

import pytest

from clever_attendance.sandbox.testing import copies_file
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
