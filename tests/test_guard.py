"""The data guard's checks: a school's day against its own recent school days (what a real run holds: in
test_scheduler)."""

from __future__ import annotations

from datetime import date, timedelta

from clever_attendance.pipeline.config import Guard
from clever_attendance.pipeline.guard import DatePlan, Verdict, fingerprint, inspect, plan

GUARD = Guard()
DAYS = [str(date(2026, 11, 2) + timedelta(days=n)) for n in range(12) if (date(2026, 11, 2) + timedelta(days=n))
        .weekday() < 5]  # ten school days, 2026-11-02 to 2026-11-13


def school_day(day: str, school: str, students: int, absent: int, records: int | None = None) -> dict:
    return {"attendance_date": day, "school_id": school, "school_number": school.upper(), "students": students,
            "absent": absent, "records": students if records is None else records}


def history(*schools: tuple[str, int], days: list[str] = DAYS) -> list[dict]:
    """Ten ordinary school days: each school sees its students, about 5% of them absent."""
    return [school_day(day, school, students, students // 20 + n % 2) for n, day in enumerate(days)
            for school, students in schools]


def verdicts(found) -> dict[tuple[str, str], str]:
    return {(f.attendance_date, f.school_id): f.verdict for f in found.findings}


def test_an_ordinary_day_passes_and_says_how_it_compares():
    found = inspect([school_day("2026-11-16", "a", 98, 6), school_day("2026-11-16", "b", 200, 9)],
                    history(("a", 100), ("b", 200)), ["2026-11-16"], GUARD)
    assert verdicts(found) == {("2026-11-16", "a"): "ok", ("2026-11-16", "b"): "ok"}
    assert not found.suspicious
    a = found.findings[0]
    assert (a.usual_students, a.usual_absent_share, a.baseline_days) == (100, 0.055, 10)
    assert a.line() == ("2026-11-16 school A (Clever a): ok: 98 records, 98 students, 6% absent (usual: 100 students, "
                        "6% absent, over 10 school days)")


def test_a_school_all_absent_missing_or_half_empty_is_suspicious():
    day = "2026-11-16"
    found = inspect([school_day(day, "a", 100, 100), school_day(day, "c", 40, 2),
                     school_day(day, "d", 300, 15), school_day(day, "e", 100, 40)],
                    history(("a", 100), ("b", 100), ("c", 100), ("d", 300), ("e", 100)), [day], GUARD)
    assert verdicts(found) == {(day, "a"): "absent share jumped", (day, "b"): "records collapsed",
                               (day, "c"): "records collapsed", (day, "d"): "ok", (day, "e"): "absent share jumped"}
    missing = next(f for f in found.findings if f.school_id == "b")
    assert (missing.records, missing.students, missing.absent_share, missing.school_number) == (0, 0, None, "B")


def test_the_thresholds_are_the_districts():
    day = "2026-11-16"
    rows, past = [school_day(day, "a", 100, 27), school_day(day, "b", 45, 2)], history(("a", 100), ("b", 100))
    assert verdicts(inspect(rows, past, [day], GUARD)) == {(day, "a"): "absent share jumped",
                                                           (day, "b"): "records collapsed"}
    lenient = Guard(absent_points=0.3, min_students_share=0.4)
    assert verdicts(inspect(rows, past, [day], lenient)) == {(day, "a"): "ok", (day, "b"): "ok"}


def test_a_school_without_enough_history_passes_marked_no_baseline():
    day = "2026-11-16"
    found = inspect([school_day(day, "new", 100, 100), school_day(day, "a", 100, 5)],
                    history(("a", 100)) + history(("new", 100), days=DAYS[-4:]), [day], GUARD)
    assert verdicts(found) == {(day, "a"): "ok", (day, "new"): "no baseline"}
    assert not found.suspicious
    assert next(f for f in found.findings if f.school_id == "new").baseline_days == 4


def test_a_holiday_is_no_attendance_not_a_district_of_missing_schools():
    found = inspect([school_day("2026-11-25", "a", 100, 5)], history(("a", 100), ("b", 100)),
                    ["2026-11-25", "2026-11-26", "2026-11-27"], GUARD)  # Thanksgiving and the day after
    assert found.no_attendance == ["2026-11-26", "2026-11-27"]
    assert verdicts(found) == {("2026-11-25", "a"): "ok", ("2026-11-25", "b"): "records collapsed"}


def test_a_small_school_is_not_judged_by_a_few_students():
    day = "2026-11-16"
    found = inspect([school_day(day, "tiny", 6, 3)], history(("tiny", 6)), [day], GUARD)
    assert verdicts(found) == {(day, "tiny"): "small school"}


def test_only_days_before_the_date_make_its_baseline():
    """A window's later dates do not vouch for an earlier one, and the last ten school days are the usual."""
    day = DAYS[5]
    found = inspect([school_day(day, "a", 100, 100)], history(("a", 100)), [day], GUARD)
    assert found.findings[0].baseline_days == 5 and found.findings[0].verdict == "absent share jumped"


# --- the plan: what the guard does with each date that has suspicious schools, given what people decided ---------

def all_absent(day: str) -> Verdict:
    """School a all absent on `day`, school b as usual: one suspicious school."""
    return inspect([school_day(day, "a", 100, 100), school_day(day, "b", 200, 9)], history(("a", 100), ("b", 200)),
                   [day], GUARD)


def decided(verdict: Verdict, decision: str | None, held_at: str = "2026-11-16T15:00:00Z",
            by: str | None = None) -> dict[tuple[str, str], dict]:
    """The ledger's hold of each suspicious date of `verdict`, as `_judge` reads it: decision, when, by whom."""
    days = {f.attendance_date for f in verdict.suspicious}
    return {(day, fingerprint([f for f in verdict.suspicious if f.attendance_date == day])):
            {"decision": decision, "held_at": held_at, "decided_by": by} for day in days}


STALE_BEFORE = "2026-11-16T10:00:00Z"  # a pending hold made before this has lost its request


def actions(plans: list[DatePlan]) -> dict[str, tuple[str, str | None]]:
    return {p.attendance_date: (p.action, p.decided_by) for p in plans}


def test_a_new_suspicious_date_is_held_and_an_ordinary_one_is_not_planned():
    found = inspect([school_day("2026-11-16", "a", 100, 5), school_day("2026-11-17", "a", 100, 100)],
                    history(("a", 100)), ["2026-11-16", "2026-11-17"], GUARD)
    (held,) = plan(found, {}, STALE_BEFORE)
    assert (held.attendance_date, held.action, held.schools, held.decided_by) == ("2026-11-17", "hold", ["A"], None)
    assert held.fingerprint == fingerprint(found.suspicious), "what a person decides on: the schools' counts"


def test_a_pending_hold_waits_unless_its_request_is_gone():
    found = all_absent("2026-11-16")
    assert actions(plan(found, decided(found, None, held_at="2026-11-16T12:00:00Z"), STALE_BEFORE)) == {
        "2026-11-16": ("wait", None)}, "a person was asked already: not asked twice"
    assert actions(plan(found, decided(found, None, held_at="2026-11-16T09:00:00Z"), STALE_BEFORE)) == {
        "2026-11-16": ("hold", None)}, "older than its timeout: asked again"


def test_a_persons_decision_on_the_same_data_is_carried_out():
    found = all_absent("2026-11-16")
    assert plan(found, decided(found, "approved", by="ana"), STALE_BEFORE) == [], "approved data passes"
    assert actions(plan(found, decided(found, "rejected", by="ana"), STALE_BEFORE)) == {
        "2026-11-16": ("drop", "ana")}
    assert actions(plan(found, decided(found, "partly approved", by="ana"), STALE_BEFORE)) == {
        "2026-11-16": ("trim", "ana")}
    assert actions(plan(found, decided(found, "no decision"), STALE_BEFORE)) == {
        "2026-11-16": ("hold", None)}, "nobody decided in time: asked again"


def test_changed_data_is_asked_about_again_whatever_was_decided_on_the_old():
    before = all_absent("2026-11-16")
    now = inspect([school_day("2026-11-16", "a", 100, 100), school_day("2026-11-16", "b", 200, 200)],
                  history(("a", 100), ("b", 200)), ["2026-11-16"], GUARD)  # school b all absent too, since
    (held,) = plan(now, decided(before, "approved", by="ana"), STALE_BEFORE)
    assert (held.action, held.schools, held.decided_by) == ("hold", ["A", "B"], None)
    assert held.fingerprint != fingerprint(before.suspicious)


def test_each_suspicious_date_is_planned_on_its_own_decision():
    days = ["2026-11-16", "2026-11-17", "2026-11-18"]
    found = inspect([school_day(day, "a", 100, 100) for day in days], history(("a", 100)), days, GUARD)
    ledger = {**decided(inspect([school_day(days[0], "a", 100, 100)], history(("a", 100)), days[:1], GUARD),
                        "rejected", by="ana"),
              **decided(inspect([school_day(days[1], "a", 100, 100)], history(("a", 100)), days[1:2], GUARD),
                        "approved", by="ana")}
    assert actions(plan(found, ledger, STALE_BEFORE)) == {"2026-11-16": ("drop", "ana"), "2026-11-18": ("hold", None)}
