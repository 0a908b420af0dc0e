"""A run's districts while it runs: which its check chose, and which have delivered (for the deadline alert)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from clever_attendance.ledger.tables import iso, run_districts

TO_SYNC, NOTHING_NEW, DELIVERED, ELSEWHERE = "to sync", "nothing new", "delivered", "in another run"
IN_FLIGHT_HOURS = 24  # a district still "to sync" in a run recorded longer ago than this is not looked into


def plan(engine: sa.Engine, dag_id: str, run_id: str, windows: dict[str, str], skipped: dict[str, str],
         reconciled: bool = False) -> None:
    """The districts the run's check chose, with their windows, and the state of those it leaves out (nothing new,
    in another run); a cleared check chooses again."""
    now = iso(datetime.now(UTC))
    rows = [{"dag_id": dag_id, "run_id": run_id, "district": slug, "window": window, "recorded_at": now,
             "state": skipped.get(slug, TO_SYNC), "reconciled": int(reconciled)} for slug, window in windows.items()]
    with engine.begin() as db:
        where = sa.and_(run_districts.c.dag_id == dag_id, run_districts.c.run_id == run_id)
        db.execute(run_districts.delete().where(where))
        if rows:
            db.execute(run_districts.insert(), rows)


def done(engine: sa.Engine, dag_id: str, run_id: str, slug: str, state: str = DELIVERED) -> None:
    """A district of the run has delivered its window, or found nothing new in it."""
    c = run_districts.c
    with engine.begin() as db:
        db.execute(run_districts.update().where(c.dag_id == dag_id, c.run_id == run_id, c.district == slug)
                   .values(state=state, recorded_at=iso(datetime.now(UTC))))


def in_flight(db: sa.Connection, dag_ids: tuple[str, ...], run_id: str) -> dict[str, tuple[str, str, str]]:
    """Districts still to sync in another run of these DAGs recorded in the last IN_FLIGHT_HOURS: slug → (dag_id,
    run_id, window) of the newest such run (whether it still runs, Airflow says)."""
    c = run_districts.c
    since = iso(datetime.now(UTC) - timedelta(hours=IN_FLIGHT_HOURS))
    found = db.execute(sa.select(c.district, c.dag_id, c.run_id, c.window).where(
        c.state == TO_SYNC, c.recorded_at >= since, c.dag_id.in_(dag_ids), c.run_id != run_id)
        .order_by(c.recorded_at))
    return {slug: (dag, run, window) for slug, dag, run, window in found}


def unfinished(db: sa.Connection, dag_id: str, run_id: str) -> list[str] | None:
    """The run's districts still to sync; None before its check has chosen."""
    c = run_districts.c
    found = db.execute(sa.select(c.district, c.state).where(c.dag_id == dag_id, c.run_id == run_id)).all()
    return sorted(slug for slug, state in found if state == TO_SYNC) if found else None
