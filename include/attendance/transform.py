"""Clever attendance records into PowerSchool attendance rows: pure functions over DataFrames.

Every record read ends in exactly one of three places: delivered (a CSV row), rejected (with a
machine-readable reason), or superseded (an older version of a record that was read again).

Speed comes from working on integer codes: each column is factorized once, every lookup is
done on the distinct values only, and the string columns are filtered and sorted in one take.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pandera.errors
import pyarrow as pa
import pyarrow.compute as pc

from include.attendance.config import District
from include.attendance.schemas import (
    CLEVER_FIELDS,
    CSV_COLUMNS,
    MODES,
    PRESENCE,
    AttendanceCsv,
    CleverAttendance,
)

REJECT_COLUMNS = ["reason", "detail", "attendance_date", "school_id", "student_id", "section_id", "last_modified"]
WHOLE_SECOND_Z = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"


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
    counts: dict = field(default_factory=dict)
    stamps: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))  # delivered rows' µs


def _filled(values: pd.Series, fallback: pd.Series) -> pd.Series:
    """`values` where set and non-empty, else `fallback`."""
    return values.where(values.notna() & (values != ""), fallback)


class Coded:
    """A column as integer codes over its distinct values (-1: missing): lookups touch each value once."""

    def __init__(self, column: pd.Series, sort: bool = False) -> None:
        self.codes, uniques = pd.factorize(column, sort=sort)
        self.values = pd.Series(uniques, dtype="str")

    def _spread(self, per_value: np.ndarray, missing: object) -> np.ndarray:
        return np.append(per_value, np.array([missing], dtype=per_value.dtype))[self.codes]

    def isin(self, index: pd.Index) -> np.ndarray:
        known = set(index)  # a set: pandas' isin on Arrow strings is far slower for this
        return self._spread(np.fromiter((v in known for v in self.values), bool, len(self.values)), False)

    def eq(self, value: str) -> np.ndarray:
        return self._spread((self.values == value).to_numpy(bool), False)

    def map(self, table: pd.Series) -> pd.Categorical:
        """`table[value]` per row, "" where missing; categories sorted, so codes sort as the values do."""
        found = self.values.map(table.astype("str")).fillna("").astype("str")
        # the "" appended last is also what code -1 (a missing key) picks
        value_codes, values = pd.factorize(pd.concat([found, pd.Series([""], dtype="str")]), sort=True)
        return pd.Categorical.from_codes(value_codes[self.codes], categories=values)


def _group(keys: list[np.ndarray]) -> np.ndarray:
    """One int64 per distinct combination of code arrays (codes may be -1)."""
    group = np.zeros(len(keys[0]), dtype=np.int64)
    for k in keys:
        group = group * (int(k.max(initial=0)) + 2) + (k + 1)
    return group


def _latest(keys: list[np.ndarray], stamps: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Among the rows marked `among`, True for the latest stamp of each key (the last read, on a tie)."""
    rows = np.flatnonzero(among)
    group = _group([k[rows] for k in keys])
    order = np.lexsort((rows, stamps[rows], group))
    last = np.ones(len(order), dtype=bool)
    last[:-1] = group[order][1:] != group[order][:-1]
    keep = np.zeros(len(stamps), dtype=bool)
    keep[rows[order[last]]] = True
    return keep


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


def _timestamps(values: pd.Series, parsed: pd.Series) -> pd.Series:
    """ISO-8601 UTC with a Z; whole-second Z stamps (Clever's usual form) pass through untouched."""
    fast = pd.Series(pc.match_substring_regex(pa.array(values), WHOLE_SECOND_Z).to_numpy(zero_copy_only=False),
                     index=values.index)
    if fast.all():
        return values
    slow = parsed[~fast]
    text = slow.dt.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = slow.dt.microsecond != 0
    text[fraction] = text[fraction] + "." + slow[fraction].dt.strftime("%f").str.rstrip("0")
    return values.where(fast, text + "Z")


def transform(raw: pd.DataFrame, roster: Roster, district: District, start: date, end: date) -> Result:
    """The CSV rows, the rejects and the counts for one district and date window."""
    raw = raw.reindex(columns=CLEVER_FIELDS).reset_index(drop=True)
    reason = np.full(len(raw), None, dtype=object)
    detail = np.full(len(raw), "", dtype=object)

    faults = _schema_faults(raw)
    reason[faults.index.to_numpy(dtype=int)] = "invalid_record"
    detail[faults.index.to_numpy(dtype=int)] = faults.to_numpy()
    day = raw["attendance_date"]
    outside = (reason == None) & ((day < start.isoformat()) | (day > end.isoformat())).to_numpy(bool)  # noqa: E711
    reason[outside] = "outside_window"
    detail[outside] = f"window is {start}..{end}"

    parsed = pd.to_datetime(raw["last_modified"], utc=True, format="ISO8601", errors="coerce")
    stamps = parsed.dt.tz_convert(None).to_numpy().astype("datetime64[us]").astype("int64")
    day, student, school = Coded(raw["attendance_date"], sort=True), Coded(raw["student_id"]), Coded(raw["school_id"])
    section = Coded(raw["section_id"])
    newest = _latest([day.codes, student.codes, section.codes, school.codes], stamps, among=reason == None)  # noqa: E711
    superseded = int(((reason == None) & ~newest).sum())  # noqa: E711
    open_ = newest  # rows still to place: the latest version of each valid record

    students = roster.students
    number = student.map(_filled(students[district.student_number_field], students["sis_id"]))
    kind, status = Coded(raw["attendance_type"]), Coded(raw["attendance_status"])
    is_section = kind.eq("section")
    has_section = section.codes >= 0
    rule, named = _code_rules(kind, status, excuse := Coded(raw["excuse_code"]), district)
    for why, mask in [
        ("unknown_student", ~student.isin(students.index)),
        ("no_student_number", number.codes == number.categories.get_loc("")),
        ("unknown_school", ~school.isin(roster.schools.index)),
        ("missing_section", is_section & ~has_section),
        ("unknown_section", is_section & has_section & ~section.isin(roster.sections.index)),
        ("no_code_rule", rule == -1),
    ]:
        reason[open_ & mask] = why
        open_ &= ~mask

    sections = roster.sections
    meeting = Coded(raw["section_id"].where(is_section))
    us_dates = day.values.str[5:7] + "/" + day.values.str[8:10] + "/" + day.values.str[:4]
    # presence: the rule's own, else Absent for an absence and Present for the rest (codes into PRESENCE)
    own = np.array([PRESENCE.index(r.presence) if r.presence else -1 for r in district.code_map] + [-1])[rule]
    presence = np.where(own >= 0, own, np.where(status.eq("absent"), PRESENCE.index("Absent"),
                                                PRESENCE.index("Present")))
    comment = Coded(raw["excuse_code"].str.slice(0, 255))  # the CSV's limit
    columns = {
        "SchoolID": school.map(_filled(roster.schools["school_number"], roster.schools["sis_id"])),
        "Student_Number": number,
        "Att_Date": day.map(pd.Series(us_dates.to_numpy(), index=day.values.to_numpy())),
        "Att_Mode_Code": kind.map(pd.Series(MODES)),
        "Period": meeting.map(sections["period"]),
        "Course_Number": meeting.map(sections["course"].map(roster.courses["number"])),
        "Section_Number": meeting.map(_filled(sections["section_number"], sections["sis_id"])),
        "Att_Code": pd.Categorical(np.array([r.att_code for r in district.code_map] + [""], dtype=object)[rule]),
        "Presence_Status_CD": pd.Categorical.from_codes(presence, categories=list(PRESENCE)),
        "Att_Comment": pd.Categorical.from_codes(np.where(named, -1, comment.codes), categories=comment.values)
        .add_categories([""]).fillna(""),
    }

    # two Clever records that land on one CSV identity: the later stays, the other is rejected
    identity = [columns[c].codes for c in ("SchoolID", "Student_Number", "Att_Mode_Code", "Period",
                                            "Section_Number")] + [day.codes]
    kept = _latest(identity, stamps, among=open_)
    reason[open_ & ~kept] = "identity_collision"
    delivered = np.flatnonzero(kept)
    keys = [day.codes] + identity[:5]
    order = delivered[np.lexsort([k[delivered] for k in reversed(keys)])]
    out = pd.DataFrame({name: _text(columns[name], order) for name in columns}, columns=CSV_COLUMNS)
    out["Last_Modified"] = _timestamps(raw["last_modified"].take(order), parsed.take(order)).astype("str").array
    AttendanceCsv.validate(out)  # a failure here is our bug, not Clever's: it stops the task

    rejected = np.flatnonzero(reason != None)  # noqa: E711
    rejects = pd.DataFrame({"reason": reason[rejected], "detail": detail[rejected],
                            **{c: raw[c].take(rejected).to_numpy() for c in REJECT_COLUMNS[2:]}}).fillna("")
    rejects = rejects.sort_values(["attendance_date", "school_id", "student_id", "section_id", "reason"],
                                  kind="stable").reset_index(drop=True)
    counts = {
        "read": len(raw), "delivered": len(out), "rejected": len(rejects), "superseded": superseded,
        "rejected_by_reason": {k: int(v) for k, v in rejects["reason"].value_counts().sort_index().items()},
        "unmapped_excuse_codes": int((out["Att_Comment"] != "").sum()),
    }
    if counts["read"] != counts["delivered"] + counts["rejected"] + counts["superseded"]:
        raise AssertionError(f"counts do not balance: {counts}")  # a bug: nothing may be lost
    return Result(out, rejects, counts, stamps[order])
