"""The multi-worker topology without containers: CeleryExecutor, PostgreSQL, Redis, an API server, a
scheduler, a dag-processor, a triggerer and several Celery workers, each in its own working directory, sharing
only the staging root. The same topology as docker-compose.yaml, on one machine: the FAB auth manager and its
users, and the attendance ledger in a PostgreSQL database of its own. Every secret is fresh for each run (the JWT
secret, the Fernet key and each user's password) and passes the check docker-compose's airflow-init runs.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from clever_attendance import deploy_secrets
from clever_attendance_sandbox.local_airflow import (
    LocalAirflow,
    answers,
    free_port,
    postgres_database,
    serving_env,
    stop,
    wait_for,
)
from clever_attendance_sandbox.wiring import AIRFLOW, prepare

REDIS = os.environ.get("ATTENDANCE_TEST_REDIS", "redis://127.0.0.1:6379")
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
USERS = {"admin": "Admin", "viewer": "Viewer", "public": "Public"}  # name: role


class Cluster(LocalAirflow):
    """The running topology, and the password of each of its users."""

    def __init__(self, env: dict[str, str], log: Path, passwords: dict[str, str]) -> None:
        super().__init__(env, log)
        self.passwords = passwords


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


def _create_user(env: dict[str, str], name: str, role: str, password: str) -> None:
    # not wiring.airflow(): its error message would hold the command, password included
    done = subprocess.run([AIRFLOW, "users", "create", "--username", name, "--password", password, "--role", role,
                           "--firstname", name, "--lastname", "Test", "--email", f"{name}@district.test"],
                          env=env, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"`airflow users create --username {name}` exited {done.returncode}:\n"
                           f"{(done.stdout + done.stderr)[-3000:]}")


def _flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


@contextmanager
def running_cluster(env: dict[str, str], workdir: Path, workers: int = 2) -> Iterator[Cluster]:
    """Start the topology; yield it; stop every process and drop the database whatever happens."""
    fresh = deploy_secrets.generate()  # never the environment's: whatever it holds is overridden below
    deploy_secrets.check(fresh)
    passwords = {name: fresh[deploy_secrets.ADMIN_PASSWORD] if role == "Admin" else secrets.token_urlsafe(18)
                 for name, role in USERS.items()}
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
               deploy_secrets.JWT_SECRET: fresh[deploy_secrets.JWT_SECRET],
               deploy_secrets.FERNET_KEY: fresh[deploy_secrets.FERNET_KEY],
               "AIRFLOW__CORE__HOSTNAME_CALLABLE": "clever_attendance_sandbox.cluster.hostname",
               "AIRFLOW__CORE__AUTH_MANAGER": FAB,
               "AIRFLOW_CONN_ATTENDANCE_LEDGER": ledger_connection(ledger)}
        prepare(env)
        # what docker-compose's airflow-init does beyond that: users of FAB's roles, the ledger's tables
        for name, role in USERS.items():
            _create_user(env, name, role, passwords[name])
        subprocess.run([sys.executable, "-m", "clever_attendance.ledger", "migrate"], env=env, check=True,
                       capture_output=True)
        components = {"api-server": [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)],
                      "scheduler": [AIRFLOW, "scheduler"], "dag-processor": [AIRFLOW, "dag-processor"],
                      "triggerer": [AIRFLOW, "triggerer"]}  # the upload waits for Safety Shield's import there
        # one task at a time per worker (with Airflow's prefetch of 1): two tasks queued together land on two workers
        for n in range(1, workers + 1):
            components[f"worker{n}"] = [AIRFLOW, "celery", "worker", "--celery-hostname", f"worker{n}@%h",
                                        "--concurrency", "1", "--without-mingle", "--without-gossip"]
        started: list[subprocess.Popen] = []
        stack.callback(lambda: stop(*started))  # all at once, within seconds
        for name, command in components.items():
            folder = workdir / name
            folder.mkdir(parents=True, exist_ok=True)
            log = stack.enter_context(open(workdir / f"{name}.log", "wb"))
            started.append(subprocess.Popen(
                command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**env, "ATTENDANCE_WORKER_NAME": name if name.startswith("worker") else ""}))
        wait_for(f"the API server on port {port} (logs in {workdir})", lambda: answers(port), 180)
        yield Cluster(env, workdir / "scheduler.log", passwords)
