"""The compose deployment, read as a file: there is no container engine here to run it.

`make cluster` and tests/test_celery.py run the same topology without containers; these checks catch
what only the compose file can get wrong: a mount of a folder that moved, a variable nobody sets, a
connection or pool the DAGs need that the deployment does not create, a deployment started with an example's
secrets or publishing the sandbox's admin endpoints.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography.fernet import Fernet

from clever_attendance.deploy_secrets import ADMIN_PASSWORD, FERNET_KEY, HOW, JWT_SECRET, generate, refusals
from clever_attendance.pipeline import config
from clever_attendance.pipeline.factory import POOL
from clever_attendance.settings import CELERY_CONFIG_OPTIONS, MAX_MAP_LENGTH
from clever_attendance_sandbox.testing import ROOT

TEXT = (ROOT / "docker-compose.yaml").read_text()
COMPOSE = yaml.safe_load(TEXT)
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
        assert env["AIRFLOW__CORE__MAX_MAP_LENGTH"] == str(MAX_MAP_LENGTH), \
            f"{name}: a run maps one district group per district: Airflow's default 1,024 caps the fleet"
        assert env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == CELERY_CONFIG_OPTIONS, \
            f"{name}: without it every task process imports pandas, pandera and the pipeline again"


def test_every_mounted_folder_and_built_file_exists():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_dir(), f"{name} mounts {source}, which is not in the project"
    copied = re.search(r"^COPY (.+) /opt/airflow/project/$", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    assert all((ROOT / f).is_file() for f in copied.split())


def test_every_variable_the_file_reads_is_in_env_example():
    needed = set(re.findall(r"(?<!\$)\$\{(\w+)(?::?\?[^}]*)?\}", TEXT))  # ${NAME:-default} has its default
    assert needed <= set(env_example()), needed - set(env_example())
    assert "AIRFLOW__API_AUTH__JWT_SECRET" in env_example(), "the API server and workers must share it"


def test_the_connections_and_pool_the_dags_use_are_created():
    fleet = config.load(ROOT / "include" / "districts.yaml")
    conn_ids = {d.clever_conn_id for d in fleet.districts} | {d.safety_shield_conn_id for d in fleet.districts}
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


def required(env: dict[str, str]) -> dict[str, str]:
    """What compose's `${NAME:?message}` says for each variable that `env` (an .env) leaves empty: name → message."""
    return {name: message for name, message in re.findall(r"(?<!\$)\$\{(\w+):\?([^}]*)\}", TEXT)
            if not env.get(name)}


def test_compose_up_refuses_to_start_without_each_secret_and_says_how_to_generate_it():
    missing = required(env_example())  # cp .env.example .env && docker compose up
    assert set(missing) == set(HOW), "the JWT secret, the Fernet key and the admin password"
    for name, message in missing.items():
        assert HOW[name] in message, name
    assert required({**env_example(), **generate()}) == {}
    for name in AIRFLOW:
        env = SERVICES[name]["environment"]
        assert env[JWT_SECRET].startswith(f"${{{JWT_SECRET}:?"), f"{name}: tokens are signed with .env's secret"
        assert env[FERNET_KEY].startswith(f"${{{FERNET_KEY}:?"), f"{name}: connections are encrypted with .env's key"
    assert SERVICES["airflow-init"]["environment"][ADMIN_PASSWORD].startswith(f"${{{ADMIN_PASSWORD}:?")


def test_the_init_job_refuses_an_example_secret_before_anything_else_and_every_service_waits_for_it():
    init = SERVICES["airflow-init"]["command"][-1]
    assert init.startswith("python -m clever_attendance.deploy_secrets check &&\n"), init
    assert init.index("airflow users create") < init.index("airflow users reset-password"), \
        "an admin created before with admin/admin gets .env's password"
    for name in set(AIRFLOW) - {"airflow-init"}:
        assert SERVICES[name]["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}, name


def check_command(env: dict[str, str]) -> subprocess.CompletedProcess:
    """The init job's check, run as it is: in a process whose environment is .env's."""
    clean = {k: v for k, v in os.environ.items() if k not in HOW}
    return subprocess.run([sys.executable, "-m", "clever_attendance.deploy_secrets", "check"],
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)


def test_the_init_jobs_check_fails_on_env_example_and_passes_on_generated_secrets():
    refused = check_command(env_example())
    assert refused.returncode == 1
    assert [line.split()[0] for line in refused.stderr.splitlines()] == list(HOW)
    fresh = generate()
    passed = check_command(fresh)
    assert passed.returncode == 0, passed.stderr
    assert not any(value in passed.stdout + passed.stderr for value in fresh.values()), "no secret in the logs"


A_FERNET_KEY = Fernet.generate_key().decode()
REFUSED = [
    (JWT_SECRET, "change-me-to-a-long-random-string"),  # .env.example's before this check
    (JWT_SECRET, "change-me"),
    (JWT_SECRET, "CHANGE-ME-" + "x" * 40),
    (JWT_SECRET, "x" * 31),
    (JWT_SECRET, " " * 48),
    (FERNET_KEY, "change-me"),
    (FERNET_KEY, "not a key"),
    (FERNET_KEY, base64.urlsafe_b64encode(os.urandom(16)).decode()),
    (FERNET_KEY, f"{A_FERNET_KEY},change-me"),
    (ADMIN_PASSWORD, "admin"),  # .env.example's before this check
    (ADMIN_PASSWORD, "Admin"),
    (ADMIN_PASSWORD, "airflow"),
    (ADMIN_PASSWORD, "password"),
    (ADMIN_PASSWORD, "change-me-please"),
    (ADMIN_PASSWORD, "s3cr3t-pw"),
]


@pytest.mark.parametrize(("name", "value"), REFUSED + [(name, "") for name in HOW])
def test_the_check_refuses_an_example_or_weak_secret_naming_it_and_how_to_generate_one(name, value):
    problems = refusals({**generate(), name: value})
    assert len(problems) == 1 and problems[0].startswith(f"{name} "), problems
    assert HOW[name] in problems[0]
    assert not value.strip() or value not in problems[0], "the message must not print the secret"


def test_the_check_refuses_missing_secrets_and_accepts_generated_ones():
    assert refusals({}) == [f"{name} is not set: generate one with {HOW[name]} and set it in .env" for name in HOW]
    assert refusals(generate()) == []
    assert generate() != generate(), "fresh for each run"
    stdlib_key = base64.urlsafe_b64encode(os.urandom(32)).decode()  # .env.example's way without cryptography
    assert refusals({**generate(), FERNET_KEY: f"{A_FERNET_KEY},{stdlib_key}"}) == [], "keys being rotated"


def test_env_example_holds_no_secret_the_check_accepts():
    assert [problem.split()[0] for problem in refusals(env_example())] == list(HOW)


def test_env_is_ignored_by_git():
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0
    assert ignored(".env"), "the deployment's secrets are never committed"
    assert not ignored(".env.example")


def test_the_sandbox_publishes_no_port_to_the_host():
    """Its /admin/... endpoints (faults, clock, rows) answer anyone: the Airflow services reach it on the compose
    network alone, and only the API server is published."""
    assert "ports" not in SERVICES["sandbox"]
    assert sorted(SERVICES["sandbox"]["expose"]) == [8081, 8082]
    assert {name: service["ports"] for name, service in SERVICES.items() if "ports" in service} == \
        {"airflow-apiserver": ["8080:8080"]}


def test_the_airflow_image_holds_the_provider_alone_and_the_sandbox_service_its_own_image():
    """The Dockerfile's stage `airflow` (every Airflow service) installs the provider and copies nothing of sandbox/;
    its stage `sandbox` (the compose service alone) adds the distribution clever-attendance-sandbox, and runs it."""
    code = "".join(line for line in (ROOT / "Dockerfile").read_text().splitlines(True) if not line.startswith("#"))
    stages = dict(re.findall(r"^FROM \S+ AS (\w+)\n(.*?)(?=^FROM |\Z)", code, re.M | re.S))
    assert set(stages) == {"airflow", "sandbox"}
    assert "sandbox" not in stages["airflow"] and "pip install --no-cache-dir --no-deps -e /opt/airflow/project\n" \
        in stages["airflow"]
    assert "pip install --no-cache-dir --no-deps -e /opt/airflow/project/sandbox" in stages["sandbox"]
    for name in AIRFLOW:
        assert SERVICES[name]["build"] == {"context": ".", "target": "airflow"}, name
    assert SERVICES["sandbox"]["build"] == {"context": ".", "target": "sandbox"}
    assert SERVICES["sandbox"]["image"] != SERVICES["airflow-worker"]["image"]
    assert SERVICES["sandbox"]["command"].startswith("python -m clever_attendance_sandbox serve ")
    assert "./sandbox/clever_attendance_sandbox:/opt/airflow/project/sandbox/clever_attendance_sandbox:ro" \
        in SERVICES["sandbox"]["volumes"]
