"""LedgerHook: the attendance ledger's database, as a SQLAlchemy engine from an Airflow connection."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import sqlalchemy as sa
from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowNotFoundException

from clever_attendance.errors import LedgerUnavailableError
from clever_attendance.settings import LEDGER_CONN_ID, LEDGER_FILE


class LedgerHook(BaseHook):
    """The ledger's engine, its tables created or upgraded on first use (`ledger.schema.migrate`).

    Connection `attendance_ledger`, of type `postgres` (host, port, login, password, schema: the
    database) or `sqlite` (host: the file's path). Not defined: the SQLite file `attendance_ledger.db`
    in AIRFLOW_HOME, which does on one machine.
    """

    conn_name_attr = "ledger_conn_id"
    default_conn_name = LEDGER_CONN_ID
    hook_name = "Attendance ledger"

    def __init__(self, ledger_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.ledger_conn_id = ledger_conn_id

    def url(self) -> sa.URL:
        try:
            conn = self.get_connection(self.ledger_conn_id)
        except AirflowNotFoundException:
            home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
            return sa.make_url(f"sqlite:///{os.path.join(home, LEDGER_FILE)}")
        return ledger_url(conn)

    def get_conn(self) -> sa.Engine:
        return engine(self.url())

    def test_connection(self) -> tuple[bool, str]:
        try:
            with self.get_conn().connect() as db:
                db.execute(sa.text("select 1"))
        except (sa.exc.SQLAlchemyError, ValueError) as error:
            return False, f"the attendance ledger did not answer: {type(error).__name__}"
        return True, "the attendance ledger answered"


@contextmanager
def ledger_errors(doing: str) -> Iterator[None]:
    """A database failure of the ledger as LedgerUnavailableError (retried), naming the ledger and what was being
    done, never the rows."""
    try:
        yield
    except sa.exc.SQLAlchemyError as error:
        raise LedgerUnavailableError(f"the attendance ledger (connection {LEDGER_CONN_ID}) failed {doing}: "
                                     f"{type(error).__name__}") from None


def ledger_url(conn: Connection) -> sa.URL:
    """The SQLAlchemy URL of a `postgres` or `sqlite` connection."""
    if conn.conn_type == "sqlite":
        return sa.make_url(f"sqlite:///{conn.host}")
    if conn.conn_type in ("postgres", "postgresql"):
        return sa.URL.create("postgresql+psycopg2", username=conn.login, password=conn.password, host=conn.host,
                             port=conn.port, database=conn.schema)
    raise ValueError(f"connection {conn.conn_id!r}: the attendance ledger needs type postgres or sqlite, "
                     f"not {conn.conn_type!r}")


@cache
def engine(url: sa.URL) -> sa.Engine:
    """One engine per database and process, its schema migrated once."""
    from clever_attendance.ledger.schema import migrate

    if url.drivername != "sqlite":
        made = sa.create_engine(url, pool_pre_ping=True)
    else:
        made = sa.create_engine(url, connect_args={"timeout": 30})

        # SQLAlchemy's documented recipe: pysqlite's own transactions leave DDL outside them; with this a
        # transaction (a migration, a run's rows) holds the write lock from its start, and another waits
        @sa.event.listens_for(made, "connect")
        def _own_transactions(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(made, "begin")
        def _write_lock(db) -> None:
            db.exec_driver_sql("BEGIN IMMEDIATE")
    migrate(made)
    return made
