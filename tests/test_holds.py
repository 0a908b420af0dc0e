"""The data guard's step and the review's delivery, against a SQLite ledger and staged files in tmp_path: which dates
of a district's file are held for a person and which are uploaded at once, and what a person's decision sends and
records (the guard's rules alone: test_guard; the review's trust boundary: test_review_trust; a real run: in
test_scheduler)."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import sqlalchemy as sa
from airflow.sdk import ObjectStoragePath

from clever_attendance.contracts import Counts, DayCounts, Decision, Freshness, GuardAction, Guarded, Staged, Window
from clever_attendance.hooks.ledger import LedgerHook
from clever_attendance.ledger.record import RunEntry, write
from clever_attendance.ledger.tables import holds as holds_table
from clever_attendance.pipeline import config, holds, staging
from clever_attendance.pipeline import guard as rules
from clever_attendance.pipeline.columns import CSV_COLUMNS
from clever_attendance.pipeline.transform import SCHOOL_DAY_COLUMNS

SLUG = "springfield"
WINDOW = Window.parse("2026-11-16_2026-11-18")
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
HISTORY = [d for d in (date(2026, 11, 2) + timedelta(days=n) for n in range(12)) if d.weekday() < 5]  # a baseline

ORDINARY = {"101": (40, 2), "102": (60, 3)}  # school number: (students seen, absent)
BROKEN_17 = {"2026-11-16": ORDINARY, "2026-11-17": {"101": (40, 40), "102": (60, 3)}, "2026-11-18": ORDINARY}


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private staging root and a SQLite ledger holding each school's ten ordinary school days before the window,
    as a delivering run records them."""
    monkeypatch.setenv("ATTENDANCE_STAGING_URL", str(tmp_path / "staging"))
    monkeypatch.setenv("AIRFLOW_CONN_ATTENDANCE_LEDGER",
                       f'{{"conn_type": "sqlite", "host": "{tmp_path / "ledger.db"}"}}')
    entry = RunEntry("clever_attendance_daily", "scheduled__history", "scheduled")
    days = [str(day) for day in HISTORY]
    entry.school_days.append((SLUG, days, pd.DataFrame(
        [school_day(day, number, *ORDINARY[number]) for day in days for number in ORDINARY],
        columns=SCHOOL_DAY_COLUMNS)))
    write(LedgerHook().get_conn(), entry, 30, NOW)
    return tmp_path


def school_day(day: str, number: str, students: int, absent: int) -> list:
    return [day, f"sc{number}", number, students, absent, 0, students]


def school_rows(day: str, number: str, students: int, absent: int) -> list[list[str]]:
    """A school's daily rows of one date, the first `absent` students absent."""
    return [[number, f"{number}{n:03}", holds.csv_date(day), "ATT_ModeDaily", "", "", "", "A" if n < absent else "",
             "Absent" if n < absent else "Present", "", f"{day}T12:00:00Z"] for n in range(students)]


def staged(days: dict[str, dict[str, tuple[int, int]]], run_id: str = "scheduled__1") -> Staged:
    """The transform's files of the window in a run folder: the CSV and its school days, which agree."""
    folder = staging.run_folder("clever_attendance", SLUG, str(WINDOW), run_id)
    out, counts = io.StringIO(), {}
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for day, schools in days.items():
        for number, (students, absent) in schools.items():
            writer.writerows(school_rows(day, number, students, absent))
        rows = sum(students for students, _ in schools.values())
        counts[day] = DayCounts(read=rows, delivered=rows)
    (folder / "attendance.csv").write_text(out.getvalue())
    summary = io.StringIO()
    csv.writer(summary, lineterminator="\n").writerows([SCHOOL_DAY_COLUMNS] + [
        school_day(day, number, *seen) for day, schools in days.items() for number, seen in schools.items()])
    (folder / "school_days.csv").write_text(summary.getvalue())
    return Staged(str(folder / "attendance.csv"), str(folder / "rejects.csv"), str(folder / "school_days.csv"),
                  str(folder / "identities.npz"), Counts(days=counts), Freshness(), 0.0)


def sent(path: str) -> dict[str, set[str]]:
    """The schools a staged CSV (with the CSV's header) holds rows of, by date (YYYY-MM-DD)."""
    with ObjectStoragePath(path).open("r", encoding="utf-8", newline="") as found:
        reader = csv.reader(found)
        assert next(reader) == CSV_COLUMNS
        by_date: dict[str, set[str]] = {}
        for row in reader:
            month, day, year = row[2].split("/")
            by_date.setdefault(f"{year}-{month}-{day}", set()).add(row[0])
    return by_date


def recorded_holds() -> list[dict]:
    with LedgerHook().get_conn().connect() as db:
        return [dict(r._mapping) for r in db.execute(sa.select(holds_table).order_by(holds_table.c.attendance_date))]


def review(run_id: str) -> holds.Review:
    """The hold as its review run reads it (the DagRun's id and conf, as the guard started it)."""
    return holds.review_of(SimpleNamespace(run_id=run_id, conf=holds.review_conf(run_id)))


def guard(files: Staged, run_id: str = "scheduled__1", now: datetime = NOW, **kwargs) -> tuple[str, Guarded]:
    """The guard's step in a polling run of springfield's window (the file to upload, and what it found)."""
    return holds.guard(config.load().district(SLUG), WINDOW, files, "clever_attendance", run_id, dry_run=False,
                       now=now, **kwargs)


def test_a_suspicious_date_is_held_whole_and_the_rest_of_the_window_goes_at_once(ledger):
    files = staged(BROKEN_17)
    path, found = guard(files)
    assert sent(path) == {"2026-11-16": {"101", "102"}, "2026-11-18": {"101", "102"}}
    assert path != files.csv_path and set(sent(files.csv_path)) == set(BROKEN_17), "the staged file stays whole"
    ((day, held),) = found.dates.items()
    assert (day, held.action, held.schools, held.decided_by) == ("2026-11-17", GuardAction.HOLD, ("101",), None)
    assert held.lines == ("2026-11-17 school 101 (Clever sc101): absent share jumped: 40 records, 40 students, "
                          "100% absent (usual: 40 students, 5% absent, over 10 school days)",)
    assert found.review and found.review.startswith("hold__springfield__2026-11-17__") and found.waiting

    asked = review(found.review)
    assert (asked.district, asked.window, asked.rows) == (SLUG, WINDOW, 100)
    assert sent(str(asked.held_path)) == {"2026-11-17": {"101", "102"}}, "the date's rows wait for the person"
    assert [(d.date, d.schools, d.counts) for d in asked.dates] == [
        ("2026-11-17", ("101",), DayCounts(read=100, delivered=100))]
    (hold,) = recorded_holds()
    assert (hold["run_id"], hold["decision"], hold["held_at"]) == ("scheduled__1", None, "2026-11-18T15:00:00Z")


def test_the_next_run_waits_for_the_person_until_the_request_is_gone(ledger):
    files = staged(BROKEN_17)
    _, first = guard(files)
    path, later = guard(files, "scheduled__2", NOW + timedelta(hours=1))
    assert later.dates["2026-11-17"].action == GuardAction.WAIT and later.review is None, "nobody is asked twice"
    assert "2026-11-17" not in sent(path)
    assert [h["review_run_id"] for h in recorded_holds()] == [first.review]

    timeout = timedelta(hours=config.load().district(SLUG).guard.hold_timeout_hours)
    path, again = guard(files, "scheduled__3", NOW + timeout + holds.STALE_MARGIN + timedelta(minutes=1))
    assert again.dates["2026-11-17"].action == GuardAction.HOLD
    assert again.review and again.review != first.review, "asked again, in a review run of its own"
    assert "2026-11-17" not in sent(path)
    assert [(h["review_run_id"], h["run_id"]) for h in recorded_holds()] == [(again.review, "scheduled__3")], (
        "the same data's hold is replaced, not doubled")


@pytest.mark.parametrize("decision,action,schools_sent", [
    (Decision.REJECTED, GuardAction.DROP, None),
    (Decision.PARTLY_APPROVED, GuardAction.TRIM, {"102"}),  # the suspicious school's rows stay out
    (Decision.APPROVED, None, {"101", "102"}),
])
def test_a_persons_decision_is_applied_when_the_same_data_comes_again(ledger, decision, action, schools_sent):
    files = staged(BROKEN_17)
    _, first = guard(files)
    holds.decide(review(first.review), decision, "ana", keep_files=True)
    path, later = guard(staged(BROKEN_17, "scheduled__2"), "scheduled__2", NOW + timedelta(hours=1))
    assert later.review is None and not later.waiting
    if action is None:
        assert later.dates == {}, "approved data passes"
    else:
        assert (later.dates["2026-11-17"].action, later.dates["2026-11-17"].decided_by) == (action, "ana")
    assert sent(path).get("2026-11-17") == schools_sent
    assert sent(path)["2026-11-16"] == sent(path)["2026-11-18"] == {"101", "102"}
    assert len(recorded_holds()) == 1


def test_dates_safety_shield_holds_already_are_neither_judged_nor_sent(ledger):
    path, found = guard(staged(BROKEN_17), unchanged=frozenset({"2026-11-17"}))
    assert sent(path) == {"2026-11-16": {"101", "102"}, "2026-11-18": {"101", "102"}}
    assert found.dates == {} and found.review is None
    assert recorded_holds() == []


def test_a_dry_run_says_what_it_would_hold_and_changes_nothing(ledger):
    files = staged(BROKEN_17)
    path, found = holds.guard(config.load().district(SLUG), WINDOW, files, "clever_attendance", "manual__dry",
                              dry_run=True, now=NOW)
    assert path == files.csv_path
    assert found.dates["2026-11-17"].action == GuardAction.HOLD and found.review is None
    assert recorded_holds() == []
    assert not (ledger / "staging" / "_holds").exists(), "no rows kept for a review"


def test_a_district_with_the_guard_off_sends_its_whole_file(ledger):
    district = config.load().district(SLUG)
    off = replace(district, guard=replace(district.guard, enabled=False))
    files = staged(BROKEN_17)
    path, found = holds.guard(off, WINDOW, files, "clever_attendance", "scheduled__1", dry_run=False, now=NOW)
    assert path == files.csv_path and found.dates == {} and found.suspicious == ()
    assert recorded_holds() == []


# --- what a person's decision delivers ----------------------------------------------------------------------------

TWO_DATES = {"2026-11-16": ORDINARY, "2026-11-17": {"101": (40, 40), "102": (60, 3)},
             "2026-11-18": {"101": (40, 2), "102": (12, 0)}}  # 101 all absent on the 17th, 102 half-empty the 18th


@pytest.mark.parametrize("chosen,schools,rows_by_date", [
    (rules.APPROVE, {"2026-11-17": {"101", "102"}, "2026-11-18": {"101", "102"}},
     {"2026-11-17": 100, "2026-11-18": 52}),
    (rules.PARTIAL, {"2026-11-17": {"102"}, "2026-11-18": {"101"}}, {"2026-11-17": 60, "2026-11-18": 40}),
    (rules.REJECT, {}, {"2026-11-17": 0, "2026-11-18": 0}),
])
def test_each_decision_delivers_its_rows_of_each_held_date(ledger, chosen, schools, rows_by_date):
    """Approve sends the held rows; "Upload all but the suspicious schools" leaves out each date's own suspicious
    schools only; Reject sends none (a header alone)."""
    _, found = guard(staged(TWO_DATES))
    assert {day: held.schools for day, held in found.dates.items()} == {"2026-11-17": ("101",),
                                                                       "2026-11-18": ("102",)}
    asked = review(found.review)
    path, counted = holds.deliver(asked, chosen)
    assert path == str(asked.held_path.parent / "decided.csv")
    assert sent(path) == schools
    assert counted == rows_by_date
    assert asked.read_held() == asked.held_path.read_bytes(), "the held rows are left as the guard recorded them"


def test_a_decision_is_recorded_on_every_date_of_the_hold_and_the_files_kept_while_owed(ledger):
    _, found = guard(staged(TWO_DATES))
    asked = review(found.review)
    holds.deliver(asked, rules.PARTIAL)
    holds.decide(asked, Decision.PARTLY_APPROVED, "ana", keep_files=True, now=NOW + timedelta(minutes=5))
    assert [(h["attendance_date"], h["decision"], h["decided_by"], h["decided_at"]) for h in recorded_holds()] == [
        ("2026-11-17", "partly approved", "ana", "2026-11-18T15:05:00Z"),
        ("2026-11-18", "partly approved", "ana", "2026-11-18T15:05:00Z")]
    assert (asked.held_path.parent / "decided.csv").exists(), "kept until the upload is done"
    holds.decide(asked, Decision.PARTLY_APPROVED, "ana", keep_files=False)
    assert not asked.held_path.parent.exists()
