"""The synthetic districts: deterministic, plausible, and with every case the pipeline must handle."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise

from clever_attendance_sandbox.generator import PRESETS, District, attendance_key, is_school_day
from clever_attendance_sandbox.testing import NOW, WEEK
from clever_attendance_sandbox.truth import ground_truth


def test_same_seed_same_district_other_seed_other_district():
    a, b = District(PRESETS["shelbyville"]), District(PRESETS["shelbyville"])
    school = a.school_ids()[0]
    assert a.students == b.students and a.sections == b.sections
    assert a.attendance(school, WEEK[0], NOW) == b.attendance(school, WEEK[0], NOW)
    other = District(PRESETS["shelbyville"], seed=7)
    assert other.id != a.id and other.students != a.students


def test_shares_are_plausible(districts):
    district = districts["springfield"]
    days = [WEEK[0] + timedelta(days=i) for i in range(5)]
    records = [r for s in district.school_ids() for d in days for r in district.attendance(s, d, NOW)]
    shares = Counter(r["attendance_status"] for r in records)
    total = sum(shares.values())
    assert 0.90 < shares["present"] / total < 0.97
    assert 0.03 < shares["absent"] / total < 0.08
    assert 0 < shares["tardy"] / total < 0.03
    assert {r.get("excuse_code") for r in records} >= {"ILL", "MED", "FAM", "UNX", "BUS", None}


def test_roster_has_the_awkward_cases(districts):
    district = districts["springfield"]
    students = [s["roles"]["student"] for s in district.students]
    assert any(s["student_number"] is None for s in students)
    assert any(s["student_number"] is None and s["sis_id"] == "" for s in students)
    assert any(not n.isascii() for s in district.students for n in s["name"].values())
    assert any(s["school_number"] is None for s in districts["springfield"].schools)
    assert any(s["period"] is None for s in districts["shelbyville"].sections)
    assert any(s["section_number"] is None for s in districts["shelbyville"].sections)


def test_period_school_has_seven_meetings_per_student(districts):
    district = districts["shelbyville"]
    school = district.school_ids()[0]
    per_student = Counter(r["student_id"] for r in district.attendance(school, WEEK[0], NOW))
    assert Counter(per_student.values()).most_common(1)[0][0] == 7


def test_corrections_appear_after_the_original(districts):
    district = districts["springfield"]
    school = district.school_ids()[0]
    monday = district.attendance(school, WEEK[0], NOW + timedelta(weeks=4))  # corrections come up to 20 school days on
    keys = Counter((r["student_id"], r["attendance_date"]) for r in monday)
    twice = [k for k, n in keys.items() if n == 2]
    assert twice, "some records were corrected on a later upload"
    before = district.attendance(school, WEEK[0], NOW.replace(day=16))
    assert len(before) < len(monday), "on the day itself the corrections do not exist yet"


def test_corrections_arrive_days_to_weeks_later(districts):
    """Over a school month corrections arrive 1 to 20 school days later; a late one changes the record only then."""
    district = districts["springfield"]
    numbers = {s["id"]: s["roles"]["student"]["student_number"] for s in district.students}
    after_all = datetime(2026, 12, 23, tzinfo=UTC)  # every correction of October has arrived
    corrections = []
    for school in district.school_ids():
        for day in (date(2026, 10, 1) + timedelta(days=i) for i in range(31)):
            records = district.attendance(school, day, after_all)
            for old, new in pairwise(records):
                if attendance_key(old) == attendance_key(new):
                    fixed_on = datetime.fromisoformat(new["last_modified"]).astimezone(district.tz).date()
                    age = sum(is_school_day(day + timedelta(days=i)) for i in range(1, (fixed_on - day).days + 1))
                    corrections.append((age, school, day, fixed_on, old, new))
    ages = Counter(c[0] for c in corrections)
    assert min(ages) == 1 and max(ages) >= 10, ages
    assert sum(n for age, n in ages.items() if age >= 5) > len(corrections) / 4, "many arrive a week or more later"

    age, school, day, fixed_on, old, new = next(c for c in corrections if c[0] >= 7 and numbers.get(c[4]["student_id"]))
    eve = datetime.combine(fixed_on - timedelta(days=1), time(23), district.tz)
    morning_after = datetime.combine(fixed_on + timedelta(days=1), time(8), district.tz)

    def served(now: datetime) -> list[dict]:
        return [r for r in district.attendance(school, day, now) if attendance_key(r) == attendance_key(old)]

    def delivered(now: datetime) -> set[tuple[str, str]]:
        return {(row[1], row[-1]) for row in ground_truth(district, day, day, now).rows}

    number = numbers[old["student_id"]]
    assert served(eve) == [old] and old["attendance_status"] != new["attendance_status"]
    assert served(morning_after) == [old, new]
    assert (number, old["last_modified"]) in delivered(eve) - delivered(morning_after)
    assert (number, new["last_modified"]) in delivered(morning_after) - delivered(eve)


def test_last_attendance_sync_moves_with_uploads(districts):
    district = districts["springfield"]
    assert district.last_attendance_sync(NOW) == "2026-11-20T21:45:00Z"
    assert district.last_attendance_sync(NOW.replace(hour=15)) == "2026-11-20T14:30:00Z"
    saturday = NOW + timedelta(days=1)
    assert district.last_attendance_sync(saturday) == "2026-11-20T21:45:00Z"


def test_calendar():
    assert is_school_day(date(2026, 11, 20))
    assert not is_school_day(date(2026, 11, 21)), "Saturday"
    assert not is_school_day(date(2026, 11, 26)) and not is_school_day(date(2026, 11, 27)), "Thanksgiving"
    assert not is_school_day(date(2026, 9, 7)), "Labor Day"
    assert not is_school_day(date(2026, 7, 15)), "summer"


def test_truth_balances_and_names_reasons(districts):
    truth = ground_truth(districts["shelbyville"], *WEEK, NOW, student_number_field="sis_id")
    reasons = Counter(r["reason"] for r in truth.rejects)
    assert truth.read == len(truth.rows) + len(truth.rejects) + truth.superseded
    assert truth.superseded > 0
    assert set(reasons) == {"unknown_student", "no_student_number", "unknown_section", "missing_section"}
    assert len(truth.rows) > 4000
