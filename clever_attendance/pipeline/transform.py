"""Clever attendance records into PowerSchool attendance rows: pure functions over DataFrames.

Every record read ends in exactly one of three places: delivered (a CSV row), rejected (with a
machine-readable reason, one of REASONS), or superseded (an older version of a record that was read again).
Clever's values are hostile input: a value the CSV may not hold is a reject, never a row, and a reject
keeps only the ids, date and time that have their expected form (else it keeps nothing of them).
The CSV rows are checked against their own schema by whoever writes them (`transform_step`, while writing).

Speed comes from working on integer codes: each column is factorized once, every lookup is
done on the distinct values only, and the string columns are filtered and sorted in one take.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd
import pandera.errors
import pyarrow as pa
import pyarrow.compute as pc

from clever_attendance.contracts import Counts, DayCounts
from clever_attendance.errors import PipelineBug
from clever_attendance.pipeline.columns import CLEVER_FIELDS, CSV_COLUMNS, IDENTITY
from clever_attendance.pipeline.config import District
from clever_attendance.pipeline.schemas import (
    CLEVER_DATE,
    CLEVER_ID,
    CLEVER_TIMESTAMP,
    FAULT,
    MAX_COMMENT,
    MODES,
    NUMBER,
    PRESENCE,
    UNUSABLE,
    CleverAttendance,
)

RECORD_IDENTITY = ["attendance_date", "student_id", "section_id", "school_id"]  # versions of one record share it
CODED_FIELDS = [*RECORD_IDENTITY, "attendance_type", "attendance_status", "excuse_code"]
REJECT_COLUMNS = ["reason", "detail", "attendance_date", "school_id", "student_id", "section_id", "last_modified"]
STORED_FORMS = {"school_id": CLEVER_ID, "student_id": CLEVER_ID, "section_id": CLEVER_ID,
                "last_modified": CLEVER_TIMESTAMP}  # a reject keeps these only in their form (the date: if real)
REASONS = {  # why a record is rejected, in the order they are decided
    "invalid_record": "fails Clever's record schema, or a value could not be staged (not a string, not valid "
                      "Unicode), or names a date or time that does not exist; `detail` names the field",
    "outside_window": "is dated outside the run's window",
    "unknown_student": "names a student missing from the roster",
    "no_student_number": "names a student without the configured number and without an sis_id",
    "invalid_student_number": "names a student whose number (the configured one, else sis_id) is not a number "
                              "the CSV may hold: not a string in Clever, or not of the form NUMBER",
    "unknown_school": "names a school missing from the roster",
    "invalid_roster_value": "names a school or section without a valid number, or a section whose period or "
                            "course number is not of the form NUMBER; `detail` names which",
    "missing_section": "is a per-period record without a section",
    "unknown_section": "is a per-period record with a section missing from the roster",
    "no_code_rule": "matches none of the district's code_map rules",
    "identity_collision": "lands on the same CSV row as a later record",
}


@dataclass
class Roster:
    """The lookups that turn Clever ids into SIS numbers, each indexed by Clever id."""

    students: pd.DataFrame  # student_number, sis_id, state_id
    schools: pd.DataFrame  # school_number, sis_id
    sections: pd.DataFrame  # school, course, period, section_number, sis_id
    courses: pd.DataFrame  # number


@dataclass
class Result:
    csv: pd.DataFrame
    rejects: pd.DataFrame
    counts: Counts
    stamps: np.ndarray  # the delivered rows' last_modified, UTC microseconds
    school_days: pd.DataFrame  # SCHOOL_DAY_COLUMNS: per school and date, what was delivered (no student data)


SCHOOL_DAY_COLUMNS = ["attendance_date", "school_id", "school_number", "records", "absent", "tardy", "students"]


def _filled(values: pd.Series, fallback: pd.Series) -> pd.Series:
    """`values` where set and non-empty, else `fallback`."""
    return values.where(values.notna() & (values != ""), fallback)


@dataclass
class Coded:
    """A column as integer codes over its distinct values (-1: missing): lookups touch each value once."""

    codes: np.ndarray
    values: pd.Series

    @classmethod
    def of(cls, column: pd.Series, sort: bool = False) -> Coded:
        codes, uniques = pd.factorize(column, sort=sort)
        return cls(codes, pd.Series(uniques, dtype="str"))

    def _spread(self, per_value: np.ndarray, missing: object) -> np.ndarray:
        return np.append(per_value, np.array([missing], dtype=per_value.dtype))[self.codes]

    def isin(self, index: pd.Index) -> np.ndarray:
        return self._spread(pd.Index(index, dtype="str").get_indexer(self.values) >= 0, False)

    def holds(self, predicate: Callable[[str], bool]) -> np.ndarray:
        """`predicate(value)` per row, asked once per distinct value; False where missing."""
        return self._spread(np.fromiter(map(predicate, self.values), bool, len(self.values)), False)

    def where(self, mask: np.ndarray) -> Coded:
        """The same values, missing where `mask` is False."""
        return Coded(np.where(mask, self.codes, -1), self.values)

    def eq(self, value: str) -> np.ndarray:
        return self._spread((self.values == value).to_numpy(bool), False)

    def map(self, table: pd.Series) -> pd.Categorical:
        """`table[value]` per row, "" where missing; categories sorted, so codes sort as the values do."""
        found = self.values.map(table.astype("str")).fillna("").astype("str")
        # the "" appended last is also what code -1 (a missing key) picks
        value_codes, values = pd.factorize(pd.concat([found, pd.Series([""], dtype="str")]), sort=True)
        return pd.Categorical.from_codes(value_codes[self.codes], categories=values)


def _usable(values: pd.Series) -> pd.Series:
    """A roster column as the CSV may hold it: its NUMBERs, missing where missing or empty, else UNUSABLE."""
    text = values.astype("str")
    present = text.notna() & (text != "")
    return text.where(text.str.fullmatch(NUMBER, na=False), UNUSABLE).where(present)


def _is(values: pd.Categorical, value: str) -> np.ndarray:
    """Per row, whether the categorical holds `value`."""
    return values.codes == values.categories.get_indexer([value])[0]


def _is_date(text: str) -> bool:
    """A date that exists, written YYYY-MM-DD."""
    if not re.fullmatch(CLEVER_DATE, text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _key(codes: list[np.ndarray]) -> np.ndarray:
    """One int64 per distinct combination of code arrays (codes may be -1), in the combinations' order."""
    key = np.zeros(len(codes[0]), dtype=np.int64)
    for c in codes:
        size = int(c.max(initial=0)) + 2
        if int(key.max(initial=0)) >= np.iinfo(np.int64).max // size:  # would overflow: renumber densely, in order
            key = pd.factorize(key, sort=True)[0]
        key = key * size + (c + 1)
    return key


def _latest(key: np.ndarray, stamps: np.ndarray, among: np.ndarray) -> np.ndarray:
    """The rows marked `among` that hold the latest stamp of their key (the last read, on a tie), in key order."""
    rows = np.flatnonzero(among)
    rows = rows[np.argsort(key[rows])]
    same = key[rows][1:] == key[rows][:-1]
    keep = np.ones(len(rows), dtype=bool)
    keep[1:] &= ~same
    keep[:-1] &= ~same  # rows whose key is read once stay; the others are settled by their stamps
    twins = np.flatnonzero(~keep)
    order = twins[np.lexsort((rows[twins], stamps[rows[twins]], key[rows[twins]]))]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = key[rows[order]][1:] != key[rows[order]][:-1]
    keep[order[last]] = True
    return rows[keep]


def _text(categorical: pd.Categorical, order: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """The categorical's values at `order`, as an Arrow-backed string array (taken in Arrow, not Python)."""
    dictionary = pa.array(categorical.categories.to_numpy(dtype=object), pa.large_string())
    return pd.array(pc.take(dictionary, categorical.codes[order]), dtype="str")


def _schema_faults(raw: pd.DataFrame) -> pd.Series:
    """Per row that fails Clever's record schema, which field and check; collected lazily."""
    try:
        CleverAttendance.validate(raw, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases.dropna(subset=["index"])
        cases = cases.assign(detail=cases["column"].astype(str) + " fails " + cases["check"].astype(str))
        return cases.groupby("index")["detail"].first()
    return pd.Series(dtype=object)


def _code_rules(kind: Coded, status: Coded, excuse: Coded, district: District) -> tuple[np.ndarray, np.ndarray]:
    """Per record, the index of the first code rule that matches (-1: none), and whether it named the excuse."""
    rule = np.full(len(kind.codes), -1)
    for n, r in enumerate(district.code_map):
        match = rule == -1
        if r.type:
            match &= kind.eq(r.type)
        if r.status:
            match &= status.eq(r.status)
        if r.excuse_code is not None:
            match &= excuse.eq(r.excuse_code)
        rule[match] = n
    named = np.array([r.excuse_code is not None for r in district.code_map] + [False])[rule]
    return rule, named


def _stamps(values: pd.Series, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each valid row's time in UTC microseconds, and whether it names a real time (not a 25th hour)."""
    text = values.where(valid)
    try:
        nanos = pc.cast(pa.array(text.array), pa.timestamp("ns", "UTC")).cast(pa.int64())
    except pa.ArrowInvalid:  # Arrow refuses the whole column for one unreal time: pandas marks which
        parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce").dt.tz_convert(None)
        nanos = pa.array(parsed.to_numpy().astype("datetime64[ns]").astype("int64"), mask=parsed.isna().to_numpy())
    real = nanos.is_valid().to_numpy(zero_copy_only=False)
    return pc.fill_null(nanos, 0).to_numpy() // 1000, real


def _timestamps(values: pd.Series, stamps: np.ndarray) -> pd.Series:
    """ISO-8601 UTC with a Z; whole-second Z stamps (Clever's usual form) pass through untouched."""
    # validated stamps are 20 characters long exactly when they are whole seconds with a Z
    fast = pc.equal(pc.binary_length(pa.array(values.array)), 20).to_numpy(zero_copy_only=False)
    if fast.all():
        return values
    slow = pd.Series(pd.to_datetime(stamps[~fast], unit="us"), index=values.index[~fast])
    text = slow.dt.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = slow.dt.microsecond != 0
    text[fraction] = text[fraction] + "." + slow[fraction].dt.strftime("%f").str.rstrip("0")
    return values.where(fast, text + "Z")


def _csv_columns(coded: dict[str, Coded], roster: Roster, district: District
                 ) -> tuple[dict[str, pd.Categorical], list[tuple[str, np.ndarray, str]]]:
    """Per record, each CSV column's value (as categoricals), and the reasons, in order, it cannot be a row
    (with their detail)."""
    day, student, school, section = (coded[f] for f in ("attendance_date", "student_id", "school_id", "section_id"))
    kind, status, excuse = (coded[f] for f in ("attendance_type", "attendance_status", "excuse_code"))
    students, sections = roster.students, roster.sections
    field = district.student_number_field
    number = student.map(_usable(_filled(students[field], students["sis_id"])))
    school_number = school.map(_usable(_filled(roster.schools["school_number"], roster.schools["sis_id"])))
    is_section = kind.eq("section")
    has_section = section.codes >= 0
    meeting = section.where(is_section)
    period = meeting.map(_usable(sections["period"]))
    course = meeting.map(_usable(sections["course"].map(roster.courses["number"])))
    section_number = meeting.map(_usable(_filled(sections["section_number"], sections["sis_id"])))
    rule, named = _code_rules(kind, status, excuse, district)
    unplaceable = [
        ("unknown_student", ~student.isin(students.index), ""),
        ("no_student_number", _is(number, ""), ""),
        ("invalid_student_number", _is(number, UNUSABLE), f"{field} (else sis_id) is not a valid number"),
        ("unknown_school", ~school.isin(roster.schools.index), ""),
        ("invalid_roster_value", _is(school_number, "") | _is(school_number, UNUSABLE),
         "the school has no valid school_number (else sis_id)"),
        ("missing_section", is_section & ~has_section, ""),
        ("unknown_section", is_section & has_section & ~section.isin(sections.index), ""),
        ("invalid_roster_value", is_section & (_is(section_number, "") | _is(section_number, UNUSABLE)),
         "the section has no valid section_number (else sis_id)"),
        ("invalid_roster_value", _is(period, UNUSABLE), "the section's period is not a valid number"),
        ("invalid_roster_value", _is(course, UNUSABLE), "the section's course number is not a valid number"),
        ("no_code_rule", rule == -1, ""),
    ]

    us_dates = day.values.str[5:7] + "/" + day.values.str[8:10] + "/" + day.values.str[:4]
    # presence: the rule's own, else Absent for an absence and Present for the rest (codes into PRESENCE)
    own = np.array([PRESENCE.index(r.presence) if r.presence else -1 for r in district.code_map] + [-1])[rule]
    presence = np.where(own >= 0, own, np.where(status.eq("absent"), PRESENCE.index("Absent"),
                                                PRESENCE.index("Present")))
    att_code, att_codes = pd.factorize(np.array([r.att_code for r in district.code_map] + [""], dtype=object))
    comment = pd.Series(excuse.values.str.slice(0, MAX_COMMENT).to_numpy(), index=excuse.values)
    columns = {
        "SchoolID": school_number,
        "Student_Number": number,
        "Att_Date": day.map(pd.Series(us_dates.to_numpy(), index=day.values.to_numpy())),
        "Att_Mode_Code": kind.map(pd.Series(MODES)),
        "Period": period,
        "Course_Number": course,
        "Section_Number": section_number,
        "Att_Code": pd.Categorical.from_codes(att_code[rule], categories=att_codes),
        "Presence_Status_CD": pd.Categorical.from_codes(presence, categories=list(PRESENCE)),
        "Att_Comment": excuse.where(~named).map(comment),  # an excuse code no rule named
    }
    return columns, unplaceable


def transform(raw: pd.DataFrame, roster: Roster, district: District, start: date, end: date) -> Result:
    """The CSV rows, the rejects and the counts for one district and date window."""
    raw = raw.reset_index(drop=True)
    unstaged = raw.get(FAULT, pd.Series(index=raw.index, dtype="str"))  # why a value was left out when staged
    raw = raw.reindex(columns=CLEVER_FIELDS)
    reason = np.full(len(raw), None, dtype=object)
    detail = np.full(len(raw), "", dtype=object)

    with ThreadPoolExecutor(max_workers=1) as pool:
        # Clever's schema is checked on the second core (mostly Arrow kernels, free of the GIL) while
        # the records are mapped on this one: neither changes `raw`
        checking = pool.submit(_schema_faults, raw)
        coded = {f: Coded.of(raw[f], sort=f == "attendance_date") for f in CODED_FIELDS}
        # a date that does not exist is missing from here on: never a key of the counts, never kept in a reject
        real_day = coded["attendance_date"].holds(_is_date)
        coded["attendance_date"] = day = coded["attendance_date"].where(real_day)
        columns, unplaceable = _csv_columns(coded, roster, district)
        faults = checking.result()
    reason[faults.index.to_numpy(dtype=int)] = "invalid_record"
    detail[faults.index.to_numpy(dtype=int)] = faults.to_numpy()
    left_out = unstaged.notna().to_numpy()  # the schema saw an empty field there: the real fault is this one
    reason[left_out], detail[left_out] = "invalid_record", unstaged[left_out].to_numpy()
    stamps, real_time = _stamps(raw["last_modified"], reason == None)  # noqa: E711
    for why, mask, text in [
        ("invalid_record", ~real_day, "attendance_date is not a calendar date"),
        ("invalid_record", ~real_time, "last_modified is not a real time"),
        ("outside_window", ~day.holds(lambda d: str(start) <= d <= str(end)), f"window is {start}..{end}"),
    ]:
        mask &= reason == None  # noqa: E711
        reason[mask], detail[mask] = why, text

    valid = reason == None  # noqa: E711
    newest = _latest(_key([coded[f].codes for f in RECORD_IDENTITY]), stamps, among=valid)
    superseded = int(valid.sum()) - len(newest)
    open_ = np.zeros(len(raw), dtype=bool)
    open_[newest] = True  # rows still to place: the latest version of each valid record
    for why, mask, text in unplaceable:
        reason[open_ & mask], detail[open_ & mask] = why, text
        open_ &= ~mask

    # two Clever records that land on one CSV identity: the later stays, the other is rejected
    identity = _key([day.codes] + [columns[c].codes for c in IDENTITY if c != "Att_Date"])
    order = _latest(identity, stamps, among=open_)  # by date, then the identity's columns: codes sort as values
    open_[order] = False
    reason[open_] = "identity_collision"
    out = pd.DataFrame({name: _text(columns[name], order) for name in columns}, columns=CSV_COLUMNS)
    out["Last_Modified"] = _timestamps(raw["last_modified"].take(order), stamps[order]).astype("str").array

    rejected = np.flatnonzero(reason != None)  # noqa: E711
    kept = {c: raw[c].take(rejected) for c in REJECT_COLUMNS[2:]}
    kept["attendance_date"] = kept["attendance_date"].where(real_day[rejected])
    kept.update({c: kept[c].where(kept[c].str.fullmatch(form, na=False)) for c, form in STORED_FORMS.items()})
    rejects = pd.DataFrame({"reason": reason[rejected], "detail": detail[rejected],
                            **{c: values.to_numpy() for c, values in kept.items()}}).fillna("")
    rejects = rejects.sort_values(["attendance_date", "school_id", "student_id", "section_id", "reason"],
                                  kind="stable").reset_index(drop=True)
    counts = Counts(len(raw), len(out), len(rejects), superseded,
                    {k: int(v) for k, v in rejects["reason"].value_counts().sort_index().items()},
                    int((out["Att_Comment"] != "").sum()))
    if counts.read != counts.delivered + counts.rejected + counts.superseded:
        raise PipelineBug(f"counts do not balance: {counts.to_xcom()}")  # a bug: nothing may be lost
    counts = replace(counts, days=_days(day, order, rejects))
    return Result(out, rejects, counts, stamps[order], _school_days(coded, order, out["SchoolID"]))


def _days(day: Coded, order: np.ndarray, rejects: pd.DataFrame) -> dict[str, DayCounts]:
    """Per attendance date as Clever wrote it: records read, delivered, rejected (by reason) and superseded."""
    names = ["", *day.values]  # code -1, a missing date, counts under ""
    read = np.bincount(day.codes + 1, minlength=len(names))
    delivered = np.bincount(day.codes[order] + 1, minlength=len(names))
    reasons: dict[str, dict[str, int]] = {}
    for (when, reason), n in rejects.groupby(["attendance_date", "reason"]).size().items():
        reasons.setdefault(when, {})[reason] = int(n)
    days = {}
    for i in np.flatnonzero(read):
        by_reason = reasons.get(names[i], {})
        rejected = sum(by_reason.values())
        days[names[i]] = DayCounts(int(read[i]), int(delivered[i]), rejected, int(read[i] - delivered[i] - rejected),
                                   by_reason)
    return days


def _school_days(coded: dict[str, Coded], order: np.ndarray, school_numbers: pd.Series) -> pd.DataFrame:
    """Per school and attendance date of the delivered rows: records, absent and tardy ones, students seen."""
    status = coded["attendance_status"]
    rows = pd.DataFrame({"day": coded["attendance_date"].codes[order], "school": coded["school_id"].codes[order],
                         "absent": status.eq("absent")[order], "tardy": status.eq("tardy")[order],
                         "student": coded["student_id"].codes[order], "number": school_numbers.to_numpy()})
    found = rows.groupby(["day", "school"], sort=True).agg(
        records=("absent", "size"), absent=("absent", "sum"), tardy=("tardy", "sum"),
        students=("student", "nunique"), school_number=("number", "first")).reset_index()
    found["attendance_date"] = coded["attendance_date"].values.to_numpy()[found["day"]]
    found["school_id"] = coded["school_id"].values.to_numpy()[found["school"]]
    return found[SCHOOL_DAY_COLUMNS].astype({"records": int, "absent": int, "tardy": int, "students": int})
