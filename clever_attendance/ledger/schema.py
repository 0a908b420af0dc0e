"""The ledger's tables and their versions: each step upgrades a database one version and keeps its data."""

from __future__ import annotations

import sqlalchemy as sa

meta = sa.MetaData()

# per run x district x attendance date: what happened and the counts (dates as YYYY-MM-DD, times as ISO UTC)
deliveries = sa.Table(
    "deliveries", meta,
    *(sa.Column(name, sa.Text, primary_key=True) for name in ("dag_id", "run_id", "district", "attendance_date")),
    sa.Column("run_type", sa.Text), sa.Column("window", sa.Text), sa.Column("status", sa.Text, nullable=False),
    *(sa.Column(name, sa.Integer) for name in ("read", "delivered", "rejected", "superseded")),
    sa.Column("rejected_by_reason", sa.Text),  # JSON
    sa.Column("import_ids", sa.Text), sa.Column("completed_at", sa.Text), sa.Column("last_attendance_sync", sa.Text),
    *(sa.Column(name, sa.Float) for name in ("latency_p50", "latency_p95", "latency_max", "extract_s",
                                             "transform_s", "upload_s")),
    sa.Column("recorded_at", sa.Text, nullable=False),
)

# the rejects themselves: Clever ids, never names or student numbers; kept rejects_retention_days
rejects = sa.Table(
    "rejects", meta,
    *(sa.Column(name, sa.Text) for name in ("dag_id", "run_id", "district", "attendance_date", "reason", "detail",
                                            "school_id", "student_id", "section_id", "last_modified",
                                            "recorded_at")),
)

# per school x attendance date, as last delivered: a school's history, to compare a new day with
school_days = sa.Table(
    "school_days", meta,
    *(sa.Column(name, sa.Text, primary_key=True) for name in ("district", "school_id", "attendance_date")),
    sa.Column("school_number", sa.Text),
    *(sa.Column(name, sa.Integer) for name in ("records", "absent", "tardy", "students")),
    sa.Column("dag_id", sa.Text), sa.Column("run_id", sa.Text), sa.Column("recorded_at", sa.Text),
)

versions = sa.Table("ledger_version", meta, sa.Column("version", sa.Integer, nullable=False))


def _create(*tables: sa.Table, indexes: tuple[tuple[str, str, tuple[str, ...]], ...] = ()):
    def step(db: sa.Connection) -> None:
        for table in tables:
            table.create(db)
        for name, table, columns in indexes:
            db.execute(sa.text(f"create index {name} on {table} ({', '.join(columns)})"))
    return step


# version n is reached by STEPS[n - 1]; a step never changes once released: a new version appends one
STEPS = [
    _create(deliveries, rejects, indexes=(("deliveries_by_district", "deliveries", ("district", "attendance_date")),
                                          ("rejects_by_run", "rejects", ("dag_id", "run_id", "district")),
                                          ("rejects_by_date", "rejects", ("district", "attendance_date")),
                                          ("rejects_by_age", "rejects", ("recorded_at",)))),
    _create(school_days),  # 2: the per-school history
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
