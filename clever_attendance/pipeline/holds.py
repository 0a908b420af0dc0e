"""The data guard's step, and the review's: hold a district's suspicious dates for a person, then carry out what
the person decided. What is suspicious is decided in `pipeline.guard` (pure); this module reads the ledger and the
staged files and writes them.

A held date's rows leave the district's upload and wait in `<staging root>/_holds/<district>/<review run>/held.csv`
for the review run (DAG `clever_attendance_review`, one run per hold) in which a person decides; every other date
of the window is uploaded at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from airflow.sdk import ObjectStoragePath

from clever_attendance.errors import GuardError
from clever_attendance.hooks.ledger import LedgerHook, ledger_errors
from clever_attendance.ledger.tables import holds, school_days
from clever_attendance.pipeline import guard as rules
from clever_attendance.pipeline import staging
from clever_attendance.pipeline.config import District
from clever_attendance.pipeline.window import Window
from clever_attendance.settings import REVIEW

HISTORY_DAYS = 120  # calendar days of a school's history read: its last school days with data fit in them
STALE_MARGIN = timedelta(hours=1)  # a pending hold older than its timeout and this: its request is gone


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_date(day: str) -> str:
    """A YYYY-MM-DD date as the CSV's Att_Date (MM/DD/YYYY)."""
    year, month, dom = day.split("-")
    return f"{month}/{dom}/{year}"


def split(content: bytes, goes: Callable[[list[str]], bool]) -> tuple[bytes, bytes]:
    """The CSV's rows for which `goes(row)` is true, and the others, each with the header (RFC 4180, as written)."""
    reader = csv.reader(io.StringIO(content.decode("utf-8"), newline=""))
    header = next(reader, None)
    parts = (io.StringIO(), io.StringIO())
    writers = [csv.writer(part, lineterminator="\n") for part in parts]
    for writer in writers:
        writer.writerow(header)
    for row in reader:
        writers[0 if goes(row) else 1].writerow(row)
    return parts[0].getvalue().encode("utf-8"), parts[1].getvalue().encode("utf-8")


def _rows(path: str) -> list[dict]:
    with ObjectStoragePath(path).open("r", encoding="utf-8", newline="") as found:
        return [{**row, **{k: int(row[k]) for k in ("records", "absent", "tardy", "students")}}
                for row in csv.DictReader(found)]


def _write(path: ObjectStoragePath, content: bytes) -> str:
    with staging.open_private(path) as out:
        out.write(content)
    return str(path)


def guard(district: District, window: Window, staged: dict, dag_id: str, run_id: str, dry_run: bool,
          now: datetime | None = None) -> dict:
    """Judge the district's file; take suspicious dates out of the upload (held for a person, or as a person
    already decided). The file to upload, what was found, and the review to request (None: none)."""
    now = now or datetime.now(UTC)
    dates = [str(day) for day in window.dates()]
    out = {"upload_path": staged["csv_path"], "suspicious": [], "no_baseline": 0, "dates": {}, "review": None}
    if not district.guard.enabled:
        return out
    with ledger_errors(f"reading the history of district {district.slug}"), LedgerHook().get_conn().connect() as db:
        since = str(window.start - timedelta(days=HISTORY_DAYS))
        history = [dict(r._mapping) for r in db.execute(sa.select(school_days).where(
            school_days.c.district == district.slug, school_days.c.attendance_date >= since,
            school_days.c.attendance_date <= dates[-1]))]
        decided = {(r.attendance_date, r.fingerprint): dict(r._mapping) for r in db.execute(sa.select(holds).where(
            holds.c.district == district.slug, holds.c.attendance_date.in_(dates)))}
    verdict = rules.inspect(_rows(staged["school_days_path"]), history, dates, district.guard)
    stale = now - timedelta(hours=district.guard.hold_timeout_hours) - STALE_MARGIN
    plans = rules.plan(verdict, decided, iso(stale))
    out.update(suspicious=[f.line() for f in verdict.suspicious],
               no_baseline=sum(f.verdict == rules.NO_BASELINE for f in verdict.findings),
               dates={p.attendance_date: {"action": p.action, "schools": p.schools, "decided_by": p.decided_by,
                                          "lines": [f.line() for f in p.findings]} for p in plans})
    if not plans or dry_run:  # a dry run says what the guard would do, and changes nothing
        return out
    away = {csv_date(p.attendance_date) for p in plans if p.action != "trim"}
    trimmed = {(csv_date(p.attendance_date), f.school_number) for p in plans if p.action == "trim"
               for f in p.findings}
    content = ObjectStoragePath(staged["csv_path"]).read_bytes()
    sent, kept = split(content, lambda row: row[2] not in away and (row[2], row[0]) not in trimmed)
    folder = ObjectStoragePath(staged["csv_path"]).parent
    out["upload_path"] = _write(folder / "upload.csv", sent)
    asked = [p for p in plans if p.action == "hold"]
    if asked:
        out["review"] = _hold(district, window, asked, kept, dag_id, run_id, now)
        for held in out["review"]["conf"]["dates"]:  # what the review records once decided
            held["counts"] = staged["counts"].get("days", {}).get(held["date"], {})
    return out


def _hold(district: District, window: Window, asked: list[rules.DatePlan], kept: bytes, dag_id: str, run_id: str,
          now: datetime) -> dict:
    """Keep the newly held dates' rows for the review and mark them pending in the ledger; the review's run id and
    its conf."""
    marks = hashlib.sha256("".join(p.fingerprint for p in asked).encode()).hexdigest()[:10]
    # the moment too: the same data asked about again after a timeout is a new request, and a new run
    review_run_id = f"hold__{district.slug}__{asked[0].attendance_date}__{marks}__{now:%Y%m%dT%H%M%S}"
    held_dates = {csv_date(p.attendance_date) for p in asked}
    held, _ = split(kept, lambda row: row[2] in held_dates)
    folder = staging.hold_folder(district.slug, review_run_id)
    path = _write(folder / "held.csv", held)
    rows = [{"district": district.slug, "attendance_date": p.attendance_date, "fingerprint": p.fingerprint,
             "findings": "\n".join(f.line() for f in p.findings), "dag_id": dag_id, "run_id": run_id,
             "review_run_id": review_run_id, "held_at": iso(now), "decision": None, "decided_by": None,
             "decided_at": None} for p in asked]
    key = sa.tuple_(holds.c.district, holds.c.attendance_date, holds.c.fingerprint)
    # asked again after a timeout: the same key, a new request
    with ledger_errors(f"holding dates of district {district.slug}"), LedgerHook().get_conn().begin() as db:
        db.execute(holds.delete().where(key.in_([(r["district"], r["attendance_date"], r["fingerprint"])
                                                 for r in rows])))
        db.execute(holds.insert(), rows)
    return {"run_id": review_run_id, "conf": {
        "district": district.slug, "window": str(window), "held_path": path, "rows": held.count(b"\n") - 1,
        "origin": {"dag_id": dag_id, "run_id": run_id}, "hold_timeout_hours": district.guard.hold_timeout_hours,
        "dates": [{"date": p.attendance_date, "fingerprint": p.fingerprint, "lines": [f.line() for f in p.findings],
                   "schools": p.schools} for p in asked]}}


def request_review(run_id: str, conf: dict, ti) -> bool:
    """Start the review run of a hold from the task that made it; False when it exists already (a retried task).

    Sends the Task SDK's own message, the one TriggerDagRunOperator's task sends: a task of its own in each
    district's group would start a process on every run for the rare hold, and a branch cannot skip it there
    (inside a mapped group Airflow 3.3.2 runs the skipped branch anyway: apache/airflow#67265).
    """
    from airflow.sdk.exceptions import ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    if ti.get_dag(REVIEW).is_paused:
        raise GuardError(f"the data guard held dates of district {conf['district']} but cannot ask anyone: the DAG "
                         f"{REVIEW} is paused")
    answer = SUPERVISOR_COMMS.send(TriggerDagRun(dag_id=REVIEW, run_id=run_id, conf=conf))
    if isinstance(answer, ErrorResponse):
        if answer.error == ErrorType.DAGRUN_ALREADY_EXISTS:
            return False
        raise GuardError(f"the data guard could not start the review {run_id} of district {conf['district']}: "
                         f"{answer.error.value}")
    return True


def deliver(conf: dict, chosen: str) -> dict:
    """The file the person's decision uploads: the held rows (Approve), without the suspicious schools' rows
    (Upload all but ...), or none (Reject)."""
    content = ObjectStoragePath(conf["held_path"]).read_bytes()
    trimmed = {(csv_date(d["date"]), school) for d in conf["dates"] for school in d["schools"]}
    if chosen == rules.APPROVE:
        sent = content
    elif chosen == rules.PARTIAL:
        sent, _ = split(content, lambda row: (row[2], row[0]) not in trimmed)
    else:
        sent, _ = split(content, lambda row: False)
    path = _write(ObjectStoragePath(conf["held_path"]).parent / "decided.csv", sent)
    by_date: dict[str, int] = {}
    for row in csv.reader(io.StringIO(sent.decode("utf-8"), newline="")):
        by_date[row[2]] = by_date.get(row[2], 0) + 1
    rows_by_date = {d["date"]: by_date.get(csv_date(d["date"]), 0) for d in conf["dates"]}
    return {"csv_path": path, "decision": rules.DECISIONS.get(chosen, chosen), "rows": sum(rows_by_date.values()),
            "rows_by_date": rows_by_date}


def decide(conf: dict, decision: str, decided_by: str | None, keep_files: bool, retention_days: int,
           now: datetime | None = None) -> None:
    """Record the decision on the review's holds, and let go of their files: kept while an upload is owed, and
    those of a rejected hold for a person to look into, `retention_days` (the rejects'); older ones go here."""
    key = sa.tuple_(holds.c.attendance_date, holds.c.fingerprint)
    with ledger_errors(f"recording a decision on district {conf['district']}"), LedgerHook().get_conn().begin() as db:
        db.execute(holds.update().where(holds.c.district == conf["district"],
                                        key.in_([(d["date"], d["fingerprint"]) for d in conf["dates"]]))
                   .values(decision=decision, decided_by=decided_by, decided_at=iso(now or datetime.now(UTC))))
    if not keep_files:
        staging.remove(ObjectStoragePath(conf["held_path"]).parent)
    staging.remove_older(staging.root() / "_holds", (now or datetime.now(UTC)) - timedelta(days=retention_days))
