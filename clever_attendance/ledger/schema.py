"""The ledger's schema versions: each step upgrades a database one version, in the migration's transaction,
and keeps its data. A step never changes what it leaves once released; a new version appends one. Tables are
created from `tables`, the newest schema, so a column added later is added by a `_columns` step, which adds only
what a database lacks: an old database gains it there, a new one had it from the start."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from clever_attendance.ledger.record import replay_district_days
from clever_attendance.ledger.tables import (
    delivered_keys,
    deliveries,
    district_days,
    holds,
    rejects,
    run_districts,
    school_days,
    versions,
)


def _create(*tables: sa.Table, indexes: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
            ) -> Callable[[sa.Connection], None]:
    def step(db: sa.Connection) -> None:
        for table in tables:
            table.create(db)
        for name, table, columns in indexes:
            db.execute(sa.text(f"create index {name} on {table} ({', '.join(columns)})"))
    return step


def _district_days(db: sa.Connection) -> None:
    """3: the current state per district and date, made from the history already recorded."""
    _create(district_days, indexes=(("district_days_by_date", "district_days", ("attendance_date",)),))(db)
    replay_district_days(db)


def _columns(*tables: sa.Table) -> Callable[[sa.Connection], None]:
    """A step that adds the columns the code's tables have and the database's lack (a database made by an earlier
    step of this code has them already)."""
    def step(db: sa.Connection) -> None:
        for table in tables:
            found = {column["name"] for column in sa.inspect(db).get_columns(table.name)}
            for column in table.c:
                if column.name not in found:
                    name = db.dialect.identifier_preparer.quote(column.name)  # `window` is a keyword in PostgreSQL
                    db.execute(sa.text(f"alter table {table.name} add column {name} "
                                       f"{column.type.compile(dialect=db.dialect)}"))
    return step


def _gone(db: sa.Connection) -> None:
    """8: the records Safety Shield holds that Clever no longer does (each date's identities, and counts), and what
    the board says of reconciliations (which runs reconciled; recent deliveries by time)."""
    _columns(deliveries, district_days, run_districts)(db)
    _create(delivered_keys, indexes=(("deliveries_by_time", "deliveries", ("recorded_at",)),))(db)


# version n is reached by STEPS[n - 1]
STEPS: list[Callable[[sa.Connection], None]] = [
    _create(deliveries, rejects, indexes=(("deliveries_by_district", "deliveries", ("district", "attendance_date")),
                                          ("rejects_by_run", "rejects", ("dag_id", "run_id", "district")),
                                          ("rejects_by_date", "rejects", ("district", "attendance_date")),
                                          ("rejects_by_age", "rejects", ("recorded_at",)))),
    _create(school_days),  # 2: the per-school history
    _district_days,
    _create(holds),  # 4: the data guard's holds and the decisions on them
    _columns(holds),  # 5: what a review acts on, recorded by the guard (a run's conf is anyone's)
    _columns(deliveries, district_days),  # 6: the digests of what was built and what Safety Shield holds
    _create(run_districts),  # 7: a run's districts while it runs (they were JSON files in staging)
    _gone,
]
VERSION = len(STEPS)


def version(db: sa.Connection) -> int:
    """The database's schema version: 0 when it holds no ledger yet."""
    if not sa.inspect(db).has_table("ledger_version"):
        return 0
    return db.execute(sa.select(versions.c.version)).scalar_one()


def migrate(engine: sa.Engine, to: int = VERSION) -> int:
    """Create or upgrade the ledger to version `to`, one step at a time in one transaction; its version."""
    with engine.begin() as db:
        if engine.dialect.name == "postgresql":  # two tasks migrating at once: one waits for the other
            db.execute(sa.text("select pg_advisory_xact_lock(7244)"))
        found = version(db)
        if found > VERSION:
            raise RuntimeError(f"the attendance ledger is at schema version {found}, newer than this code's "
                               f"{VERSION}: upgrade the project")
        if not found:
            versions.create(db)
            db.execute(versions.insert().values(version=0))
        for step in STEPS[found:to]:
            step(db)
        if to > found:
            db.execute(versions.update().values(version=to))
        return max(found, to)
