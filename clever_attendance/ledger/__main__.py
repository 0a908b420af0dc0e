"""`python -m clever_attendance.ledger migrate`: create the ledger's PostgreSQL database when it is missing, then
bring its tables to this code's schema version (what docker-compose's init job runs; the tasks migrate on first
use too). The database is the connection `attendance_ledger`'s."""

from __future__ import annotations

import argparse

import sqlalchemy as sa

from clever_attendance.hooks.ledger import LedgerHook, engine
from clever_attendance.ledger.schema import version


def create_database(url: sa.URL) -> bool:
    """Create a PostgreSQL database that does not exist yet (the server's `postgres` database and the same
    credentials); whether it was created."""
    server = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as db:
            if db.execute(sa.text("select 1 from pg_database where datname = :name"), {"name": url.database}).first():
                return False
            db.execute(sa.text(f'create database "{url.database}"'))
            return True
    finally:
        server.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["migrate"])
    parser.parse_args()
    url = LedgerHook().url()
    if url.drivername.startswith("postgresql") and create_database(url):
        print(f"created the database {url.database}")
    with engine(url).connect() as db:  # made as the tasks make it: migrated, SQLite's DDL in transactions
        print(f"the attendance ledger ({url.render_as_string(hide_password=True)}) is at schema version "
              f"{version(db)}")


if __name__ == "__main__":
    main()
