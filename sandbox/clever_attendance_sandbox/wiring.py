"""Point a local Airflow at the sandbox: its environment, metadata database, pool and connections.

Shared by `make demo`, `make up` and the tests, so that all three run the project the same way.
Connections travel as AIRFLOW_CONN_* environment variables: the sandbox's freshly generated
secrets never touch a file of the project.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from clever_attendance import settings

ROOT = Path(__file__).resolve().parents[2]  # the repository (sandbox/clever_attendance_sandbox/ in it, installed
# editable): dags/, plugins/, include/
AIRFLOW = str(Path(sys.executable).parent / "airflow")  # the CLI of this environment's Airflow
POOL = (settings.POOL, str(settings.POOL_SLOTS),
        "Districts syncing at once (each extract reads up to max_concurrency schools at once)")


def airflow_env(home: Path, sandbox: dict, staging: Path, districts_file: Path | None = None,
                executor: str = "LocalExecutor", sql_alchemy_conn: str | None = None) -> dict[str, str]:
    """The environment of every Airflow command and component run against the sandbox."""
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__MAX_MAP_LENGTH": str(settings.MAX_MAP_LENGTH),
        "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
        "AIRFLOW__CORE__MP_FORKSERVER_PRELOAD": ",".join(settings.TASK_PRELOAD),
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": settings.CELERY_CONFIG_OPTIONS,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn or f"sqlite:///{home}/airflow.db",
        "ATTENDANCE_STAGING_URL": str(staging),
        "AIRFLOW_CONN_CLEVER_DEFAULT": json.dumps({
            "conn_type": "clever", "host": sandbox["clever_url"], "login": sandbox["clever_client_id"],
            "password": sandbox["clever_client_secret"], "extra": {"oauth_url": sandbox["clever_url"]}}),
        "AIRFLOW_CONN_SAFETY_SHIELD_DEFAULT": json.dumps({
            "conn_type": "safety_shield", "host": sandbox["upload_url"], "password": sandbox["upload_api_key"],
            "extra": {"poll_seconds": 0.2}}),
        "AIRFLOW_CONN_ATTENDANCE_LEDGER": json.dumps({"conn_type": "sqlite", "host": str(home / settings.LEDGER_FILE)}),
    }
    if districts_file:
        env["ATTENDANCE_DISTRICTS_FILE"] = str(districts_file)
    return env


def airflow(env: dict[str, str], *args: str, timeout: float = 600, log: Path | None = None) -> str:
    """Run an `airflow` command; its output, or an error that says which command failed and how."""
    done = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    if log:
        log.write_text(output)
    if done.returncode:
        raise RuntimeError(f"`airflow {' '.join(args)}` exited {done.returncode}:\n{output[-3000:]}")
    return output


def prepare(env: dict[str, str]) -> None:
    """Create the metadata database and the pool the extract tasks use."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    airflow(env, "db", "migrate")
    airflow(env, "pools", "set", *POOL)
