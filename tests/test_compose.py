"""The compose deployment, read as a file: there is no container engine here to run it.

`make cluster` and tests/test_celery.py run the same topology without containers; these checks catch
what only the compose file can get wrong: a mount of a folder that moved, a variable nobody sets, a
connection or pool the DAGs need that the deployment does not create.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import yaml

from clever_attendance.pipeline import config
from clever_attendance.pipeline.factory import POOL
from clever_attendance.sandbox.testing import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW = [name for name in SERVICES if name.startswith("airflow-")]


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_reference_topology_on_celery_postgres_and_redis():
    assert set(AIRFLOW) == {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker",
                            "airflow-triggerer", "airflow-init"}
    assert {"postgres", "redis", "sandbox"} <= set(SERVICES)
    for name in AIRFLOW:
        env = SERVICES[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])[:2] == ("redis", ":@redis:6379"), name
        assert "attendance-staging:/opt/airflow/staging" in SERVICES[name]["volumes"], \
            f"{name}: tasks of one run land on different workers, so staging must be shared"


def test_every_mounted_folder_and_built_file_exists():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_dir(), f"{name} mounts {source}, which is not in the project"
    copied = re.search(r"^COPY (.+) /opt/airflow/project/$", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    assert all((ROOT / f).is_file() for f in copied.split())


def test_every_variable_the_file_reads_is_in_env_example():
    text = (ROOT / "docker-compose.yaml").read_text()
    needed = set(re.findall(r"(?<!\$)\$\{(\w+)\}", text))  # ${NAME:-default} has its default
    assert needed <= set(env_example()), needed - set(env_example())
    assert "AIRFLOW__API_AUTH__JWT_SECRET" in env_example(), "the API server and workers must share it"


def test_the_connections_and_pool_the_dags_use_are_created():
    settings = config.load(ROOT / "include" / "districts.yaml")
    conn_ids = {d.clever_conn_id for d in settings.districts} | {d.safety_shield_conn_id for d in settings.districts}
    env = env_example()
    for conn_id in conn_ids:
        assert json.loads(env[f"AIRFLOW_CONN_{conn_id.upper()}"])["host"].startswith("http://sandbox:"), conn_id
    assert env["ATTENDANCE_STAGING_URL"] == "/opt/airflow/staging"
    init = " ".join(SERVICES["airflow-init"]["command"])
    assert "airflow db migrate" in init and f"airflow pools set {POOL} " in init


def test_the_ui_uses_fab_roles_and_the_ledger_has_its_own_database():
    for name in AIRFLOW:
        assert SERVICES[name]["environment"]["AIRFLOW__CORE__AUTH_MANAGER"].endswith("fab_auth_manager.FabAuthManager")
    init = " ".join(SERVICES["airflow-init"]["command"])
    assert "airflow users create" in init and "--role Admin" in init, "the first admin, from .env"
    assert {"_AIRFLOW_WWW_USER_USERNAME", "_AIRFLOW_WWW_USER_PASSWORD"} <= set(env_example())
    assert "python -m clever_attendance.ledger migrate" in init, "the ledger's database and tables"
    ledger = json.loads(env_example()["AIRFLOW_CONN_ATTENDANCE_LEDGER"])
    assert (ledger["conn_type"], ledger["host"], ledger["schema"]) == ("postgres", "postgres", "attendance_ledger")
