"""A deterministic synthetic district: roster, calendar and attendance as Clever serves them.

Everything is a pure function of (seed, district spec, clock), so the servers, the ground truth
and the benchmarks all see the same data without storing it. Attendance is generated per
(school, date) on demand, which keeps a 50,000-student district cheap to serve.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo

from clever_attendance_sandbox.faults import FeedBreak

RETENTION_DAYS = 183  # Clever keeps attendance six months after its date
NO_ID = "0" * 24
PERIODS = 7
SUBJECTS = ["MATH", "ELA", "SCI", "HIST", "ART", "PE", "MUS"]
EXCUSE_CODES = ["ILL", "MED", "FAM", "UNX", "BUS"]  # BUS is mapped by no sandbox district
FIRST = ["José", "Zoë", "Łukasz", "Aoife", "Søren", "Mía", "Chloé", "Nguyễn", "Ana", "Björn",
         "Jamal", "Priya", "Dmitrí", "Ayşe", "Kenji", "Renée", "Oluwaseun", "Li", "Fatima", "Noah"]
LAST = ["García", "Müller", "O'Brien", "Nguyễn", "Kowalski", "Smith", "Øvergård", "Dubois",
        "Hernández", "Tanaka", "Okafor", "Johnson", "Çelik", "Novák", "Lee", "Patel"]


def clever_id(*parts: object) -> str:
    """A 24-hex id like Clever's, stable for the same parts."""
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()[:24]


def is_school_day(day: date) -> bool:
    """Weekdays outside a plausible US holiday calendar."""
    if day.weekday() >= 5:
        return False
    md = (day.month, day.day)
    if md == (1, 1) or md >= (12, 24) or (6, 20) <= md <= (8, 14):
        return False
    if day.month == 9 and day.weekday() == 0 and day.day <= 7:  # Labor Day
        return False
    thanksgiving = 22 + (3 - date(day.year, 11, 1).weekday()) % 7
    return not (day.month == 11 and day.day in (thanksgiving, thanksgiving + 1))


def next_school_days(day: date, count: int) -> date:
    """The `count`-th school day after `day`."""
    while count:
        day += timedelta(days=1)
        count -= is_school_day(day)
    return day


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class DistrictSpec:
    slug: str
    name: str
    schools: int
    students: int
    period_share: float  # share of schools taking per-period attendance
    timezone: str = "America/New_York"
    seed: int = 42


PRESETS = {
    "springfield": DistrictSpec("springfield", "Springfield Public Schools", 3, 300, 0.0),
    "shelbyville": DistrictSpec("shelbyville", "Shelbyville Unified", 2, 160, 1.0, "America/Chicago"),
    "tiny": DistrictSpec("tiny", "Tiny Test District", 2, 12, 0.5),
    "large": DistrictSpec("large", "Large County Schools", 60, 50_000, 1 / 3),
}


def presets(names: list[str]) -> list[DistrictSpec]:
    """Presets by name; `tiny*100` is 100 copies of a preset, slugs tiny_0001 … tiny_0100 (for scale runs)."""
    out = []
    for name in names:
        preset, _, count = name.partition("*")
        spec = PRESETS[preset]
        out += [replace(spec, slug=f"{preset}_{n:04d}", name=f"{spec.name} {n}") for n in range(1, int(count) + 1)] \
            if count else [spec]
    return out


@dataclass(eq=False)  # hashed by identity: attendance is cached per district object
class District:
    """The synthetic district behind one Clever district id."""

    spec: DistrictSpec
    seed: int = 42
    breaks: tuple[FeedBreak, ...] = ()  # its feed broken for some school days (served and in the truth alike)
    _rosters: dict = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return clever_id(self.seed, self.spec.slug, "district")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.spec.timezone)

    def _rng(self, *parts: object) -> random.Random:
        return random.Random(f"{self.seed}:{self.spec.slug}:" + ":".join(map(str, parts)))

    @cached_property
    def schools(self) -> list[dict]:
        out = []
        for i in range(self.spec.schools):
            sid = clever_id(self.seed, self.spec.slug, "school", i)
            out.append({
                "id": sid, "district": self.id, "name": f"{self.spec.name} School {i + 1}",
                # every fourth school has no PowerSchool number, only an SIS id
                "school_number": None if i % 4 == 2 else str(100 + i),
                "sis_id": f"SCH{i + 1:03d}", "state_id": f"ST-{i + 1:04d}",
                "low_grade": "6", "high_grade": "8",
            })
        return sorted(out, key=lambda s: s["id"])

    @cached_property
    def period_schools(self) -> set[str]:
        ordered = [clever_id(self.seed, self.spec.slug, "school", i) for i in range(self.spec.schools)]
        return set(ordered[: round(self.spec.schools * self.spec.period_share)])

    @cached_property
    def students(self) -> list[dict]:
        rng = self._rng("students")
        ordered = [clever_id(self.seed, self.spec.slug, "school", i) for i in range(self.spec.schools)]
        out = []
        for i in range(self.spec.students):
            school = ordered[i % len(ordered)]
            number = None if i % 37 == 5 else str(200_000 + i)
            sis_id = "" if i % 296 == 42 else f"{900_000 + i}"
            out.append({
                "id": clever_id(self.seed, self.spec.slug, "student", i),
                "district": self.id,
                "name": {"first": rng.choice(FIRST), "middle": rng.choice(["", "M", "Zoé"]),
                         "last": rng.choice(LAST)},
                "roles": {"student": {
                    "sis_id": sis_id, "student_number": number,
                    "state_id": None if i % 11 == 0 else f"ST{3_000_000 + i}",
                    "grade": str(6 + i % 3), "school": school, "schools": [school],
                }},
            })
        return sorted(out, key=lambda s: s["id"])

    @cached_property
    def courses(self) -> list[dict]:
        out = [{"id": clever_id(self.seed, self.spec.slug, "course", s), "district": self.id,
                "name": f"{s.title()} 7", "number": f"{s}7"} for s in SUBJECTS]
        return sorted(out, key=lambda c: c["id"])

    @cached_property
    def terms(self) -> list[dict]:
        return [{"id": clever_id(self.seed, self.spec.slug, "term"), "district": self.id,
                 "name": "School year", "start_date": "2025-08-15", "end_date": "2027-06-19"}]

    @cached_property
    def sections(self) -> list[dict]:
        out = []
        for school in sorted(self.period_schools):
            size = len(self._students_of(school))
            for p in range(1, PERIODS + 1):
                subject = SUBJECTS[p - 1]
                for k in range(max(1, -(-size // 30))):
                    n = len(out)
                    out.append({
                        "id": clever_id(self.seed, self.spec.slug, "section", school, p, k),
                        "district": self.id, "school": school,
                        "course": clever_id(self.seed, self.spec.slug, "course", subject),
                        "period": None if n % 13 == 12 else str(p),
                        "section_number": None if n % 9 == 4 else f"{p}-{k + 1}",
                        "sis_id": f"SEC{n + 1:05d}", "name": f"{subject} 7 period {p}",
                        "term_id": self.terms[0]["id"],
                    })
        return sorted(out, key=lambda s: s["id"])

    def _students_of(self, school: str) -> list[str]:
        if school not in self._rosters:
            self._rosters[school] = [s["id"] for s in self.students
                                     if s["roles"]["student"]["school"] == school]
        return self._rosters[school]

    def ghost_student(self, school: str) -> str:
        """A student id with attendance but no roster entry (left the district, say)."""
        return clever_id(self.seed, self.spec.slug, "ghost", school)

    def last_attendance_sync(self, now: datetime) -> str | None:
        """The district's latest upload to Clever at or before `now`."""
        for back in range(RETENTION_DAYS):
            past = [u for u in self._upload_times(now.date() - timedelta(days=back)) if u <= now]
            if past:
                return iso_z(max(past))
        return None

    def next_upload(self, after: datetime) -> datetime:
        """The district's first upload to Clever after `after`: the moment its last_attendance_sync moves."""
        day = after.astimezone(self.tz).date()
        while not (later := [u for u in self._upload_times(day) if u > after]):
            day += timedelta(days=1)
        return min(later)

    def _upload_times(self, day: date) -> list[datetime]:
        if not is_school_day(day):
            return []
        return [self._at(day, 8 + slot, 30) for slot in range(1, PERIODS + 1)] + [self._at(day, 16, 45)]

    def _at(self, day: date, hour: int, minute: int, second: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute, second), self.tz)

    def attendance(self, school: str, day: date, now: datetime) -> list[dict]:
        """The records Clever holds for one school and day at `now`, in Clever's key order."""
        if now.date() - day > timedelta(days=RETENTION_DAYS):
            return []
        records = _visible_records(self, school, day, now)
        for broken in self.breaks:
            if (broken.school, broken.date) == (school, day):
                records = broken.apply(records)
        return records

    def school_ids(self) -> list[str]:
        return [s["id"] for s in self.schools]


def attendance_key(record: dict) -> tuple[str, str, str, str]:
    return (record["attendance_date"], record["student_id"], record.get("section_id") or NO_ID,
            record["school_id"])


@lru_cache(maxsize=512)
def _visible_records(district: District, school: str, day: date, now: datetime) -> list[dict]:
    return [record for visible, record in _day_records(district, school, day) if visible <= now]


@lru_cache(maxsize=512)
def _day_records(district: District, school: str, day: date) -> tuple[tuple[datetime, dict], ...]:
    """(visible from, record) for every version of every record of a school day, in key order."""
    if not is_school_day(day):
        return ()
    rng = district._rng("attendance", school, day.isoformat())
    students = list(district._students_of(school))
    ghosted = school == district.schools[0]["id"]
    if ghosted:
        students.append(district.ghost_student(school))
    meetings = _meetings(district, school)
    out: list[dict] = []
    for n, student in enumerate(students):
        if school in district.period_schools:
            slots = [(p, meetings[p][n % len(meetings[p])]) for p in range(1, PERIODS + 1)]
        else:
            slots = [(0, None)]
        for slot, section_id in slots:
            out.extend(_versions(district, rng, school, day, student, slot, section_id))
    out.sort(key=lambda pair: attendance_key(pair[1]))
    return tuple(out)


@lru_cache(maxsize=256)
def _meetings(district: District, school: str) -> dict[int, list[str]]:
    """Per period, the ids of a school's sections in the order students are seated in them."""
    if school not in district.period_schools:
        return {}
    size = len(district._students_of(school))
    return {p: [clever_id(district.seed, district.spec.slug, "section", school, p, k)
                for k in range(max(1, -(-size // 30)))] for p in range(1, PERIODS + 1)}


def _versions(district: District, rng: random.Random, school: str, day: date, student: str,
              slot: int, section_id: str | None) -> list[tuple[datetime, dict]]:
    roll = rng.random()
    status = "present" if roll < 0.94 else "absent" if roll < 0.99 else "tardy"
    uploaded = district._at(day, 8 + max(slot, 1), 30)
    stamp = uploaded - timedelta(minutes=rng.randrange(1, 25), seconds=rng.randrange(60))
    record = {
        "attendance_date": day.isoformat(), "attendance_status": status,
        "attendance_type": "section" if section_id else "daily",
        "created": iso_z(stamp), "last_modified": iso_z(stamp),
        "district_id": district.id, "school_id": school, "student_id": student,
    }
    if section_id:
        special = rng.random()
        if special < 0.002:
            pass  # a section record without its section, as Clever's spec allows
        elif special < 0.004:
            record["section_id"] = clever_id(district.seed, "deleted-section", school, slot)
        else:
            record["section_id"] = section_id
    if status == "absent" and rng.random() < 0.6:
        record["excuse_code"] = rng.choice(EXCUSE_CODES)
    if rng.random() < 0.5:
        record["sis_id"] = f"ATT{rng.randrange(10**9):09d}"
    versions = [(uploaded, record)]
    if rng.random() < 0.02:  # the district corrects the record on a later upload
        later = next_school_days(day, _correction_age(district, rng.randrange(1, 4), school, day, student, slot))
        fixed_at = district._at(later, 16, 45)
        fixed = {k: v for k, v in record.items() if k != "excuse_code"}
        fixed["attendance_status"] = "present" if status != "present" else "absent"
        if fixed["attendance_status"] == "absent":
            fixed["excuse_code"] = "ILL"
        fixed["last_modified"] = iso_z(fixed_at - timedelta(minutes=5))
        versions.append((fixed_at, fixed))
    return versions


def _correction_age(district: District, soon: int, school: str, day: date, student: str, slot: int) -> int:
    """School days until a correction: half of them `soon` (1-3), the rest 5-20, as late notes arrive."""
    # a stream of its own, so the day's shared stream, and every other record, stays as it was
    late = district._rng("correction", school, day.isoformat(), student, slot)
    return soon if late.random() < 0.5 else late.randrange(5, 21)
