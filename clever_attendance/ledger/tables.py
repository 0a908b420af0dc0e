"""The ledger's tables as the code knows them (the newest schema version); dates as YYYY-MM-DD, times ISO UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

meta = sa.MetaData()
COUNTS = ("read", "delivered", "rejected", "superseded")


def iso(moment: datetime) -> str:
    """A time as the ledger writes it: ISO UTC to the second, so that text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(*names: str, primary_key: bool = False) -> list[sa.Column]:
    return [sa.Column(name, sa.Text, primary_key=primary_key) for name in names]


# per run x district x attendance date: what happened and the counts
deliveries = sa.Table(
    "deliveries", meta,
    *_text("dag_id", "run_id", "district", "attendance_date", primary_key=True),
    *_text("run_type", "window"), sa.Column("status", sa.Text, nullable=False),
    *(sa.Column(name, sa.Integer) for name in COUNTS),
    *_text("rejected_by_reason", "import_ids", "completed_at", "last_attendance_sync"),  # the reasons as JSON
    # 6: the digest of the date's rows this run built, and why they were posted (new, changed; unchanged: not)
    *_text("digest", "posted"),
    # 8: records Safety Shield holds for the date that Clever no longer does; 1 when the run reconciled
    sa.Column("gone", sa.Integer), sa.Column("reconciled", sa.Integer),
    *(sa.Column(name, sa.Float) for name in ("latency_p50", "latency_p95", "latency_max", "extract_s",
                                             "transform_s", "upload_s")),
    sa.Column("recorded_at", sa.Text, nullable=False),
)

# the rejects themselves: Clever ids, never names or student numbers; kept rejects_retention_days
rejects = sa.Table(
    "rejects", meta,
    *_text("dag_id", "run_id", "district", "attendance_date", "reason", "detail", "school_id", "student_id",
           "section_id", "last_modified", "recorded_at"),
)

# per school x attendance date, as last uploaded: a school's history, to compare a new day with
school_days = sa.Table(
    "school_days", meta,
    *_text("district", "school_id", "attendance_date", primary_key=True), *_text("school_number"),
    *(sa.Column(name, sa.Integer) for name in ("records", "absent", "tardy", "students")),
    *_text("dag_id", "run_id", "recorded_at"),
)

# per district x attendance date, as it stands (the board reads this, never the whole history): the latest
# status and its run; what the latest upload of the date delivered, and from which run and Clever sync
district_days = sa.Table(
    "district_days", meta,
    *_text("district", "attendance_date", primary_key=True),
    sa.Column("status", sa.Text, nullable=False), *_text("dag_id", "run_id", "recorded_at", "last_attendance_sync"),
    *(sa.Column(name, sa.Integer) for name in COUNTS),
    *_text("rejected_by_reason", "completed_at", "delivered_dag_id", "delivered_run_id", "delivered_sync"),
    sa.Column("delivered_digest", sa.Text),  # 6: the digest of the rows Safety Shield holds for the date
    sa.Column("gone", sa.Integer),  # 8: records in Safety Shield gone from Clever, as of the date's last read
)

# 8: per district x attendance date, the identities Safety Shield holds (every row ever posted for the date, as
# 48-bit hashes: `ledger.record.pack`), to count what Clever no longer holds; kept while Clever keeps the date
delivered_keys = sa.Table(
    "delivered_keys", meta,
    *_text("district", "attendance_date", primary_key=True),
    sa.Column("hashes", sa.LargeBinary, nullable=False), sa.Column("count", sa.Integer, nullable=False),
)

# a person's say on a suspicious day: the guard's hold of a district's date (its suspicious schools' counts are
# the fingerprint: the same data held again is not asked about again) and the decision, once made. A review run acts
# only on the holds recorded here under its run id, on the file whose digest is `held_sha256`
holds = sa.Table(
    "holds", meta,
    *_text("district", "attendance_date", "fingerprint", primary_key=True),
    *_text("findings", "dag_id", "run_id", "review_run_id", "held_at", "decision", "decided_by", "decided_at"),
    *_text("window", "schools", "counts", "held_sha256"),  # 5: what the review acts on, recorded by the guard alone
    sa.Column("held_rows", sa.Integer), sa.Column("timeout_hours", sa.Float),
)

# 7: a run's districts as its check chose them and how far each got: the deadline alert reads it while the run runs
run_districts = sa.Table(
    "run_districts", meta,
    *_text("dag_id", "run_id", "district", primary_key=True),
    *_text("window", "state", "recorded_at"),  # state: to sync, nothing new, delivered
    sa.Column("reconciled", sa.Integer),  # 8: 1 when the run reconciles (the board's last reconciliation)
)

versions = sa.Table("ledger_version", meta, sa.Column("version", sa.Integer, nullable=False))
