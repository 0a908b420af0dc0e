"""The multi-worker topology without containers: CeleryExecutor, PostgreSQL, Redis, an API server, a
scheduler, a dag-processor, a triggerer and several Celery workers, each in its own working directory, sharing
only the staging root. The same topology as docker-compose.yaml, on one machine: the FAB auth manager and its
users, and the attendance ledger in a PostgreSQL database of its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from clever_attendance.sandbox.local_airflow import (
    LocalAirflow,
    answers,
    free_port,
    postgres_database,
    serving_env,
    stop,
    wait_for,
)
from clever_attendance.sandbox.wiring import AIRFLOW, airflow, prepare

REDIS = os.environ.get("ATTENDANCE_TEST_REDIS", "redis://127.0.0.1:6379")
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
USERS = {"admin": "Admin", "viewer": "Viewer", "public": "Public"}  # name (and password): role


def hostname() -> str:
    """Airflow's hostname_callable for the workers: their name, since they share one machine's hostname."""
    return os.environ.get("ATTENDANCE_WORKER_NAME") or socket.getfqdn()


def ledger_connection(url: str) -> str:
    """The attendance_ledger connection (JSON) of a PostgreSQL database's SQLAlchemy URL."""
    import json

    import sqlalchemy as sa

    parsed = sa.make_url(url)
    return json.dumps({"conn_type": "postgres", "host": parsed.host, "port": parsed.port, "login": parsed.username,
                       "password": parsed.password, "schema": parsed.database})


def _flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


@contextmanager
def running_cluster(env: dict[str, str], workdir: Path, workers: int = 2) -> Iterator[LocalAirflow]:
    """Start the topology; yield it; stop every process and drop the database whatever happens."""
    with ExitStack() as stack:
        url, ledger = stack.enter_context(postgres_database()), stack.enter_context(postgres_database())
        broker = f"{REDIS}/{7 + os.getpid() % 8}"
        _flush_redis(broker)
        port = free_port()
        env = {**serving_env(env, port),
               "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
               "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
               "AIRFLOW__CELERY__BROKER_URL": broker,
               "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + url.replace("+psycopg2", ""),
               "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(24).hex(),
               "AIRFLOW__CORE__HOSTNAME_CALLABLE": "clever_attendance.sandbox.cluster.hostname",
               "AIRFLOW__CORE__AUTH_MANAGER": FAB,
               "AIRFLOW_CONN_ATTENDANCE_LEDGER": ledger_connection(ledger)}
        prepare(env)
        # what docker-compose's airflow-init does beyond that: users of FAB's roles, the ledger's tables
        for name, role in USERS.items():
            airflow(env, "users", "create", "--username", name, "--password", name, "--role", role,
                    "--firstname", name, "--lastname", "Test", "--email", f"{name}@district.test")
        subprocess.run([sys.executable, "-m", "clever_attendance.ledger", "migrate"], env=env, check=True,
                       capture_output=True)
        components = {"api-server": [AIRFLOW, "api-server", "--port", str(port)],
                      "scheduler": [AIRFLOW, "scheduler"], "dag-processor": [AIRFLOW, "dag-processor"],
                      "triggerer": [AIRFLOW, "triggerer"]}  # the upload waits for Safety Shield's import there
        # one task at a time per worker (with Airflow's prefetch of 1): two tasks queued together land on two workers
        for n in range(1, workers + 1):
            components[f"worker{n}"] = [AIRFLOW, "celery", "worker", "--celery-hostname", f"worker{n}@%h",
                                        "--concurrency", "1", "--without-mingle", "--without-gossip"]
        for name, command in components.items():
            folder = workdir / name
            folder.mkdir(parents=True, exist_ok=True)
            log = stack.enter_context(open(workdir / f"{name}.log", "wb"))
            process = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True,
                                       env={**env, "ATTENDANCE_WORKER_NAME": name if name.startswith("worker") else ""})
            stack.callback(stop, process)
        wait_for(f"the API server on port {port} (logs in {workdir})", lambda: answers(port), 180)
        yield LocalAirflow(env, workdir / "scheduler.log")
