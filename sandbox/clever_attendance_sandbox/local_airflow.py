"""A real Airflow on this machine for the integration tests: `airflow standalone` (scheduler,
dag-processor, API server, triggerer; LocalExecutor) on a free port, stopped with its whole
process group whatever happens; on SQLite or on a throwaway PostgreSQL database.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from clever_attendance_sandbox.wiring import AIRFLOW, airflow, prepare


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], object], seconds: float, every: float = 1.0) -> object:
    """Poll `check` until it returns something truthy; fail with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise TimeoutError(f"timed out after {seconds:.0f}s waiting for {what}")


POSTGRES = os.environ.get("ATTENDANCE_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@contextmanager
def postgres_database(admin_url: str = POSTGRES) -> Iterator[str]:
    """A new, empty PostgreSQL database for one Airflow, dropped afterwards; its SQLAlchemy URL."""
    import psycopg2

    base, _, _ = admin_url.rpartition("/")
    name = f"airflow_test_{os.getpid()}_{int(time.time())}_{secrets.token_hex(3)}"
    dsn = admin_url.replace("postgresql+psycopg2://", "postgresql://")
    try:
        admin = psycopg2.connect(dsn)
    except psycopg2.OperationalError as error:
        raise RuntimeError(f"PostgreSQL is needed at {admin_url} (set ATTENDANCE_TEST_POSTGRES): {error}") from None
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'create database "{name}"')
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,))
            cursor.execute(f'drop database if exists "{name}"')
        admin.close()


class LocalAirflow:
    """A running standalone Airflow: its environment, CLI and metadata database."""

    def __init__(self, env: dict[str, str], log: Path, pid: int | None = None) -> None:
        self.env, self.log, self.pid = env, log, pid  # pid: of the process that started every component
        self.url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]

    def cli(self, *args: str, timeout: float = 300) -> str:
        return airflow(self.env, *args, timeout=timeout)

    def query(self, sql: str, *params: object) -> list[tuple]:
        """Read the metadata database (SQLite or PostgreSQL) with plain SQL and `?` placeholders."""
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30) as db:
                return db.execute(sql, params).fetchall()
        import psycopg2

        with psycopg2.connect(self.url.replace("postgresql+psycopg2://", "postgresql://")) as db, \
                db.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall()

    def run_states(self, dag_id: str, run_type: str = "%") -> dict[str, str]:
        return dict(self.query("select run_id, state from dag_run where dag_id = ? and run_type like ?",
                               dag_id, run_type))

    def wait_for_dag(self, dag_id: str, seconds: float = 180) -> None:
        wait_for(f"the dag-processor to parse {dag_id}", lambda: self.query(
            "select 1 from dag where dag_id = ? and not is_stale", dag_id), seconds)

    def wait_for_runs(self, dag_id: str, count: int, seconds: float, run_type: str = "%") -> dict[str, str]:
        """Until `count` runs of the DAG (of a run type) have ended; their states."""
        def ended() -> dict[str, str] | None:
            states = self.run_states(dag_id, run_type)
            done = {r: s for r, s in states.items() if s in ("success", "failed")}
            return done if len(done) >= count else None
        try:
            return wait_for(f"{count} finished runs of {dag_id}", ended, seconds, every=2)  # type: ignore[return-value]
        except TimeoutError as error:
            raise TimeoutError(f"{error}; runs now: {self.run_states(dag_id)}; log: {self.log}") from None


def serving_env(env: dict[str, str], port: int) -> dict[str, str]:
    """The environment of components whose API server is on `port`, scheduling and parsing at test speed."""
    return {**env, "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "3",  # a person's decision overdue: seen soon
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5"}


@contextmanager
def running_airflow(env: dict[str, str], workdir: Path, ready_seconds: float = 240) -> Iterator[LocalAirflow]:
    """Migrate, start `airflow standalone` on a free port, yield it, and stop every process it started."""
    port = free_port()
    env = serving_env(env, port)
    prepare(env)
    log = workdir / "standalone.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([AIRFLOW, "standalone"],
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            local = LocalAirflow(env, log, process.pid)
            wait_for(f"airflow standalone to answer on port {port} (log: {log})",
                     lambda: process.poll() is None and answers(port) and _password(env) or _died(process, log),
                     ready_seconds)
            yield local
        finally:
            stop(process)


def _password(env: dict[str, str]) -> bool:
    return (Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated").exists()


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _died(process: subprocess.Popen, log: Path) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"airflow standalone exited {process.returncode}: {log.read_text()[-3000:]}")
    return False


GRACE_SECONDS = 10  # after SIGTERM: Airflow's components, busy or hung, may ignore it


def stop(*processes: subprocess.Popen) -> None:
    """Stop each process's whole group (each started with start_new_session) at once: SIGTERM, GRACE_SECONDS for
    all of them, then SIGKILL to whatever of the groups is left, so that nothing outlives its starter."""
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for process in processes:  # the leader may be gone while its children still run
        _signal_group(process, signal.SIGKILL)
        process.wait(10)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def interrupt_on_sigterm() -> None:
    """A SIGTERM (a service manager, `kill`) stops a long-running command as Ctrl-C does: its `finally` blocks
    stop what it started."""
    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
