"""The data guard's step, and the review's: hold a district's suspicious dates for a person, then carry out what
the person decided. What is suspicious is decided in `pipeline.guard` (pure); this module reads the ledger and the
staged files and writes them.

A held date's rows leave the district's upload and wait in `<staging root>/_holds/<district>/<review run>/held.csv`
for the review run (DAG `clever_attendance_review`, one run per hold) in which a person decides; every other date
of the window is uploaded at once. A review run acts only on what the guard recorded in the ledger under the run's
own id, on a file whose digest matches: its conf names the hold and nothing else, and every path is derived.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from airflow.sdk import ObjectStoragePath

from clever_attendance.contracts import DayCounts, Decision, GuardAction, Guarded, HeldDate, RunOptions, Staged, Window
from clever_attendance.errors import GuardError, RunInputError
from clever_attendance.hooks.ledger import LedgerHook, ledger_errors
from clever_attendance.ledger.tables import holds, iso, school_days
from clever_attendance.pipeline import guard as rules
from clever_attendance.pipeline import staging
from clever_attendance.pipeline.columns import CSV_COLUMNS
from clever_attendance.pipeline.config import District
from clever_attendance.settings import REVIEW

DATE, SCHOOL = CSV_COLUMNS.index("Att_Date"), CSV_COLUMNS.index("SchoolID")  # where split's rows hold them
HELD_FILE = "held.csv"
HISTORY_DAYS = 120  # calendar days of a school's history read: its last school days with data fit in them
STALE_MARGIN = timedelta(hours=1)  # a pending hold older than its timeout and this: its request is gone


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


def guard(district: District, window: Window, staged: Staged, dag_id: str, run_id: str, dry_run: bool,
          unchanged: frozenset[str] = frozenset(), now: datetime | None = None) -> tuple[str, Guarded]:
    """Judge the district's file; take suspicious dates out of the upload (held for a person, or as a person
    already decided), and the `unchanged` ones (Safety Shield holds their rows already: not judged again). The
    file to upload, and what was found (with the review requested, if any)."""
    now = now or datetime.now(UTC)
    dates = [str(day) for day in window.dates() if str(day) not in unchanged]
    suspicious, plans = _judge(district, window, staged, dates, now) if district.guard.enabled and dates else ([], [])
    found = Guarded(tuple(f.line() for f in suspicious),
                    {p.attendance_date: HeldDate(p.action, tuple(p.schools), p.decided_by,
                                                 tuple(f.line() for f in p.findings)) for p in plans})
    if not (plans or unchanged) or dry_run:  # a dry run says what the guard would do, and changes nothing
        return staged.csv_path, found
    away = {csv_date(p.attendance_date) for p in plans if p.action is not GuardAction.TRIM} | \
        {csv_date(d) for d in unchanged}
    trimmed = {(csv_date(p.attendance_date), f.school_number) for p in plans if p.action is GuardAction.TRIM
               for f in p.findings}
    content = ObjectStoragePath(staged.csv_path).read_bytes()
    sent, kept = split(content, lambda row: row[DATE] not in away and (row[DATE], row[SCHOOL]) not in trimmed)
    upload_path = _write(ObjectStoragePath(staged.csv_path).parent / "upload.csv", sent)
    asked = [p for p in plans if p.action is GuardAction.HOLD]
    if asked:
        found = replace(found, review=_hold(district, window, asked, kept, dag_id, run_id, now, staged.counts.days))
    return upload_path, found


def _judge(district: District, window: Window, staged: Staged, dates: list[str], now: datetime
           ) -> tuple[list[rules.Finding], list[rules.DatePlan]]:
    """The suspicious schools' days among `dates`, and what to do with each date that has one."""
    with ledger_errors(f"reading the history of district {district.slug}"), LedgerHook().get_conn().connect() as db:
        since = str(window.start - timedelta(days=HISTORY_DAYS))
        history = [dict(r._mapping) for r in db.execute(sa.select(school_days).where(
            school_days.c.district == district.slug, school_days.c.attendance_date >= since,
            school_days.c.attendance_date <= dates[-1]))]
        decided = {(r.attendance_date, r.fingerprint): dict(r._mapping) for r in db.execute(sa.select(holds).where(
            holds.c.district == district.slug, holds.c.attendance_date.in_(dates)))}
    verdict = rules.inspect(_rows(staged.school_days_path), history, dates, district.guard)
    stale = now - timedelta(hours=district.guard.hold_timeout_hours) - STALE_MARGIN
    return verdict.suspicious, rules.plan(verdict, decided, iso(stale))


def _hold(district: District, window: Window, asked: list[rules.DatePlan], kept: bytes, dag_id: str, run_id: str,
          now: datetime, counts: dict[str, DayCounts]) -> str:
    """Keep the newly held dates' rows for the review and record the hold in the ledger, where the review reads it;
    the review's run id (its conf names it, nothing else: nothing a review does is taken from its conf)."""
    marks = hashlib.sha256("".join(p.fingerprint for p in asked).encode()).hexdigest()[:10]
    # the moment too: the same data asked about again after a timeout is a new request, and a new run
    review_run_id = f"hold__{district.slug}__{asked[0].attendance_date}__{marks}__{now:%Y%m%dT%H%M%S}"
    held_dates = {csv_date(p.attendance_date) for p in asked}
    held, _ = split(kept, lambda row: row[DATE] in held_dates)
    folder = staging.hold_folder(district.slug, review_run_id)
    staging.make_private(folder)
    _write(folder / HELD_FILE, held)
    review = {"review_run_id": review_run_id, "window": str(window), "held_sha256": hashlib.sha256(held).hexdigest(),
              "held_rows": held.count(b"\n") - 1, "timeout_hours": district.guard.hold_timeout_hours}
    rows = [{"district": district.slug, "attendance_date": p.attendance_date, "fingerprint": p.fingerprint,
             "findings": "\n".join(f.line() for f in p.findings), "dag_id": dag_id, "run_id": run_id,
             "held_at": iso(now), "decision": None, "decided_by": None, "decided_at": None,
             "schools": json.dumps(p.schools), "counts": json.dumps(_counts(counts, p.attendance_date)), **review}
            for p in asked]
    key = sa.tuple_(holds.c.district, holds.c.attendance_date, holds.c.fingerprint)
    # asked again after a timeout: the same key, a new request
    with ledger_errors(f"holding dates of district {district.slug}"), LedgerHook().get_conn().begin() as db:
        db.execute(holds.delete().where(key.in_([(r["district"], r["attendance_date"], r["fingerprint"])
                                                 for r in rows])))
        db.execute(holds.insert(), rows)
    return review_run_id


def _counts(days: dict[str, DayCounts], day: str) -> dict:
    return days[day].to_xcom() if day in days else {}


def review_conf(review_run_id: str) -> dict[str, str]:
    """The conf of a hold's review run: the hold, by the run's own id (`RunOptions.hold`), and nothing else."""
    return {"hold": review_run_id}


@dataclass(frozen=True)
class HeldDay:
    """One date of a hold, as the guard recorded it (counts and shares only)."""

    date: str
    fingerprint: str
    lines: tuple[str, ...]  # each suspicious school's day, described
    schools: tuple[str, ...]  # the suspicious schools' numbers
    counts: DayCounts  # the date's records in the run that held it


@dataclass(frozen=True)
class Review:
    """A hold as the guard recorded it in the ledger: all a review run acts on."""

    run_id: str
    district: str
    window: Window
    dates: tuple[HeldDay, ...]
    rows: int
    sha256: str
    timeout_hours: float

    @property
    def held_path(self) -> ObjectStoragePath:
        return staging.hold_folder(self.district, self.run_id) / HELD_FILE

    def read_held(self) -> bytes:
        """The held rows, refused unless they are the bytes the guard recorded."""
        content = self.held_path.read_bytes()
        if hashlib.sha256(content).hexdigest() != self.sha256:
            raise RunInputError(f"review {self.run_id} of district {self.district}: the held file is not the one the "
                                "data guard recorded (its digest differs): nothing is uploaded")
        return content


def review_of(dag_run) -> Review:
    """The hold a review run acts on: the one the guard recorded under the run's own id.

    Anyone who may trigger the review DAG may give any conf; only the guard records holds, so a run that does not
    name its own recorded hold is refused before anything is read or uploaded.
    """
    run_id = dag_run.run_id
    if RunOptions.parse(dag_run.conf or {}).hold != run_id:
        raise RunInputError(f"{REVIEW} run {run_id!r}: field 'hold' must name the run's own hold: reviews are started "
                            "by the data guard, never by hand")
    with ledger_errors(f"reading the hold of review {run_id}"), LedgerHook().get_conn().connect() as db:
        found = [dict(r._mapping) for r in db.execute(sa.select(holds).where(holds.c.review_run_id == run_id)
                                                      .order_by(holds.c.attendance_date))]
    if not found or found[0]["held_sha256"] is None:
        raise RunInputError(f"{REVIEW} run {run_id!r} names no hold the data guard recorded: reviews are started "
                            "by the data guard, never by hand")
    first = found[0]
    return Review(run_id=run_id, district=first["district"], window=Window.parse(first["window"]),
                  rows=first["held_rows"], sha256=first["held_sha256"], timeout_hours=first["timeout_hours"],
                  dates=tuple(HeldDay(r["attendance_date"], r["fingerprint"], tuple(r["findings"].split("\n")),
                                      tuple(json.loads(r["schools"])), DayCounts(**json.loads(r["counts"])))
                              for r in found))


def request_review(run_id: str, district: str, ti) -> bool:
    """Start the review run of a hold from the task that made it; False when it exists already (a retried task).

    Sends the Task SDK's own message, the one TriggerDagRunOperator's task sends: a task of its own in each
    district's group would start a process on every run for the rare hold, and a branch cannot skip it there
    (inside a mapped group Airflow 3.3.2 runs the skipped branch anyway: apache/airflow#67265).
    """
    from airflow.sdk.exceptions import ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    if ti.get_dag(REVIEW).is_paused:
        raise GuardError(f"the data guard held dates of district {district} but cannot ask anyone: the DAG "
                         f"{REVIEW} is paused")
    answer = SUPERVISOR_COMMS.send(TriggerDagRun(dag_id=REVIEW, run_id=run_id, conf=review_conf(run_id)))
    if isinstance(answer, ErrorResponse):
        if answer.error == ErrorType.DAGRUN_ALREADY_EXISTS:
            return False
        raise GuardError(f"the data guard could not start the review {run_id} of district {district}: "
                         f"{answer.error.value}")
    return True


def deliver(review: Review, chosen: str) -> tuple[str, dict[str, int]]:
    """The file the person's decision uploads: the held rows (Approve), without the suspicious schools' rows
    (Upload all but ...), or none (Reject); and its rows of each held date."""
    content = review.read_held()
    trimmed = {(csv_date(d.date), school) for d in review.dates for school in d.schools}
    if chosen == rules.APPROVE:
        sent = content
    elif chosen == rules.PARTIAL:
        sent, _ = split(content, lambda row: (row[DATE], row[SCHOOL]) not in trimmed)
    else:
        sent, _ = split(content, lambda row: False)
    path = _write(review.held_path.parent / "decided.csv", sent)
    by_date: dict[str, int] = {}
    for row in csv.reader(io.StringIO(sent.decode("utf-8"), newline="")):
        by_date[row[DATE]] = by_date.get(row[DATE], 0) + 1
    return path, {d.date: by_date.get(csv_date(d.date), 0) for d in review.dates}


def decide(review: Review, decision: Decision, decided_by: str | None, keep_files: bool,
           now: datetime | None = None) -> None:
    """Record the decision on the review's holds, and let go of their files: kept while an upload is owed, and
    those of a rejected hold for a person to look into (the polls' reports remove them after
    `rejects_retention_days`)."""
    with ledger_errors(f"recording a decision on district {review.district}"), LedgerHook().get_conn().begin() as db:
        db.execute(holds.update().where(holds.c.review_run_id == review.run_id)
                   .values(decision=decision, decided_by=decided_by, decided_at=iso(now or datetime.now(UTC))))
    if not keep_files:
        staging.remove(review.held_path.parent)
