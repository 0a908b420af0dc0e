"""The transform: byte-exact against golden files and the sandbox's ground truth, and by properties."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clever_attendance.contracts import Counts, DayCounts
from clever_attendance.pipeline import config, staged_csv
from clever_attendance.pipeline.columns import CLEVER_FIELDS, CLEVER_OPTIONAL, CLEVER_REQUIRED, CSV_COLUMNS, IDENTITY
from clever_attendance.pipeline.schemas import (
    CLEVER_ID,
    CLEVER_TIMESTAMP,
    UNUSABLE,
    AttendanceCsv,
    CleverAttendance,
    CsvSchemaError,
    check_csv,
)
from clever_attendance.pipeline.transform import REASONS, Roster, _key, _latest, transform
from clever_attendance_sandbox.generator import District
from clever_attendance_sandbox.testing import NOW, WEEK
from clever_attendance_sandbox.truth import HEADER, configured_truth

GOLDEN = Path(__file__).parent / "golden"


def csv_text(frame: pd.DataFrame) -> str:
    out = io.BytesIO()
    staged_csv.write_frame(frame, out)
    return out.getvalue().decode("utf-8")


def staged(district: District, start: date, end: date, folder: Path) -> tuple[pd.DataFrame, Roster]:
    """The generator's records and roster, through the same staging files the extract task writes."""
    roster = {"students": district.students, "schools": district.schools, "sections": district.sections,
              "courses": district.courses}
    staged_csv.write_roster(roster, lambda name: open(folder / f"{name}.csv", "w", newline="", encoding="utf-8"))
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    raw = io.StringIO()
    staged_csv.write_records((r for s in district.school_ids() for d in days for r in district.attendance(s, d, NOW)),
                          CLEVER_FIELDS, raw)
    return (staged_csv.read_raw(io.BytesIO(raw.getvalue().encode())),
            staged_csv.read_roster(lambda name: open(folder / f"{name}.csv", "rb")))


def settings_for(slug: str) -> config.District:
    return config.load().district(slug)


def test_golden_edge_cases_byte_for_byte():
    folder = GOLDEN / "edge_cases"
    district = config.load(folder / "districts.yaml").districts[0]
    result = transform(staged_csv.read_raw(folder / "raw.csv"),
                       staged_csv.read_roster(lambda name: open(folder / f"{name}.csv", "rb")),
                       district, date(2026, 11, 16), date(2026, 11, 17))
    AttendanceCsv.validate(result.csv)
    assert csv_text(result.csv) == (folder / "attendance.csv").read_text(encoding="utf-8")
    assert csv_text(result.rejects) == (folder / "rejects.csv").read_text(encoding="utf-8")
    # per school and date, what the ledger keeps for the data guard: sc2's two meeting rows are one student
    assert csv_text(result.school_days) == (folder / "school_days.csv").read_text(encoding="utf-8")
    assert result.counts == Counts(
        read=18, delivered=6, rejected=11, superseded=1, unmapped_excuse_codes=1,
        rejected_by_reason={"identity_collision": 1, "invalid_record": 4, "missing_section": 1,
                            "no_student_number": 1, "outside_window": 1, "unknown_school": 1,
                            "unknown_section": 1, "unknown_student": 1},
        days={  # every record under the date Clever gave it, even outside the window; one that does not
            # exist (2026-11-31) under "", as a missing date: it is never a key of the counts
            "": DayCounts(read=1, rejected=1, rejected_by_reason={"invalid_record": 1}),
            "2026-11-16": DayCounts(read=13, delivered=5, rejected=8, rejected_by_reason={
                "identity_collision": 1, "invalid_record": 2, "missing_section": 1, "no_student_number": 1,
                "unknown_school": 1, "unknown_section": 1, "unknown_student": 1}),
            "2026-11-17": DayCounts(read=3, delivered=1, rejected=1, superseded=1,
                                    rejected_by_reason={"invalid_record": 1}),
            "2026-11-18": DayCounts(read=1, rejected=1, rejected_by_reason={"outside_window": 1})})


@pytest.mark.parametrize("slug,start,end", [
    ("springfield", WEEK[0], WEEK[0]),
    ("springfield", *WEEK),
    ("shelbyville", date(2026, 11, 19), date(2026, 11, 19)),
    ("shelbyville", date(2026, 11, 12), date(2026, 11, 20)),
    ("shelbyville", date(2026, 11, 21), date(2026, 11, 22)),
])
def test_matches_the_sandbox_ground_truth(districts, slug, start, end, tmp_path):
    cfg = settings_for(slug)
    raw, roster = staged(districts[slug], start, end, tmp_path)
    result = transform(raw, roster, cfg, start, end)
    truth = configured_truth(districts[slug], cfg, start, end, NOW)
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(truth.rows)
    assert csv_text(result.csv) == expected.getvalue()
    got_rejects = result.rejects[["reason", "attendance_date", "school_id", "student_id", "section_id"]]
    assert got_rejects.to_dict("records") == truth.rejects
    assert (result.counts.read, result.counts.superseded) == (truth.read, truth.superseded)


def test_an_empty_window_is_an_empty_file(districts, tmp_path):
    raw, roster = staged(districts["tiny"], date(2026, 11, 21), date(2026, 11, 22), tmp_path)
    result = transform(raw, roster, settings_for("springfield"), date(2026, 11, 21), date(2026, 11, 22))
    assert csv_text(result.csv) == ",".join(HEADER) + "\n"
    assert result.counts.read == 0


def test_the_schemas_check_the_columns_the_light_names_say_in_their_order():
    assert list(AttendanceCsv.to_schema().columns) == CSV_COLUMNS == list(HEADER), "the sandbox's own header too"
    assert list(CleverAttendance.to_schema().columns) == CLEVER_FIELDS
    assert [name for name, column in CleverAttendance.to_schema().columns.items() if column.nullable] == \
        list(CLEVER_OPTIONAL), "what the hook passes on only when Clever sends it"
    assert not set(CLEVER_REQUIRED) & set(CLEVER_OPTIONAL)


ids = st.sampled_from
record = st.fixed_dictionaries({
    "attendance_date": ids(["2026-11-16", "2026-11-17", "2026-11-18", "2026-13-40", None, "2026-11-16\n",
                            "２０２６-11-16", "2026-02-30", "2026-11-16,absent"]),
    "attendance_status": ids(["present", "absent", "tardy", "late", None]),
    "attendance_type": ids(["daily", "section"]),
    "created": st.just("2026-11-16T08:00:00Z"),
    "last_modified": ids(["2026-11-16T08:00:00Z", "2026-11-16T09:00:00.5Z", "2026-11-17T08:00:00+00:00",
                          "2026-11-18T08:00:00Z", "not a time", "2026-11-16T08:00:00Z\n"]),
    "district_id": st.just("d1"),
    "school_id": ids(["sc1", "sc2", "sc3", "sc9", "sc1\n", "=sc1"]),
    "student_id": ids(["s1", "s2", "s3", "s4", "s9", "s1\r", "s" * 65]),
    "section_id": ids(["se1", "se2", "se3", "se9", None, "se1 "]),
    "excuse_code": ids([None, "ILL", "BUS", 'a "quoted", code', "L" * 300, "L" * 255 + "M", "two\nlines", "\x00",
                        "é\u2028"]),
})
hostile_numbers = ["=1+2", "+1", "-1", "@A1", " 200001", "200001\n", "2 1", "9" * 33, UNUSABLE]
student = st.tuples(ids(["200001", "200002", None, "", *hostile_numbers]),
                    ids(["900001", "900002", "", *hostile_numbers]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(record, max_size=60), numbers=st.lists(student, min_size=4, max_size=4))
def test_properties_every_record_accounted_for(rows, numbers):
    raw = pd.DataFrame(rows, columns=CLEVER_FIELDS).astype(object).where(lambda f: f.notna(), None)
    raw = raw.astype("str").where(pd.DataFrame(rows, columns=CLEVER_FIELDS).notna()) if rows else \
        pd.DataFrame(columns=CLEVER_FIELDS, dtype=str)
    roster = Roster(
        students=pd.DataFrame([{"id": f"s{i + 1}", "student_number": n, "sis_id": s, "state_id": None}
                               for i, (n, s) in enumerate(numbers)]).set_index("id").replace("", pd.NA),
        schools=pd.DataFrame({"id": ["sc1", "sc2", "sc3"], "school_number": ["101", None, "=SUM(A1)"],
                              "sis_id": ["S1", "S2", "S3"]}).set_index("id"),
        sections=pd.DataFrame({"id": ["se1", "se2", "se3"], "school": ["sc2", "sc2", "sc2"],
                               "course": ["c1", "c9", "c2"], "period": ["1", None, "1\n"],
                               "section_number": ["1-1", None, "-1"], "sis_id": ["X1", "X2", None]}).set_index("id"),
        courses=pd.DataFrame({"id": ["c1", "c2"], "number": ["MATH7", "x y"]}).set_index("id"),
    )
    result = transform(raw, roster, settings_for("springfield"), date(2026, 11, 16), date(2026, 11, 17))
    counts = result.counts
    assert counts.read == len(rows) == counts.delivered + counts.rejected + counts.superseded
    assert len(result.csv) == counts.delivered and len(result.rejects) == counts.rejected
    assert not result.csv.duplicated(subset=IDENTITY).any()
    AttendanceCsv.validate(result.csv)  # its numbers of the form NUMBER, its comments without control characters
    assert set(result.rejects["reason"]) <= set(REASONS)
    assert sum(counts.rejected_by_reason.values()) == counts.rejected
    # what a reject keeps of Clever's values, and the counts' keys: only in their form (a real date), else nothing
    kept = result.rejects
    assert kept["attendance_date"].map(lambda d: d == "" or real_date(d)).all()
    assert all(d == "" or real_date(d) for d in counts.days)
    for column, form in (("school_id", CLEVER_ID), ("student_id", CLEVER_ID), ("section_id", CLEVER_ID),
                         ("last_modified", CLEVER_TIMESTAMP)):
        assert kept[column].map(lambda v, f=form: v == "" or re.fullmatch(f, v) is not None).all(), column


def real_date(text: str) -> bool:
    """A date that exists, written YYYY-MM-DD."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


version = st.tuples(st.integers(-1, 3), st.integers(-1, 3), st.integers(0, 4), st.booleans())


@settings(max_examples=300, deadline=None)
@given(versions=st.lists(version, max_size=40), spread=st.sampled_from([1, 2**40]))
def test_latest_keeps_the_newest_version_of_each_key_in_key_order(versions, spread):
    """De-duplication against a dictionary model; a spread of 2**40 makes the combined key renumber itself
    (it would overflow int64), which must neither merge keys nor change their order."""
    first, second = (np.array([v[i] * spread if v[i] >= 0 else -1 for v in versions], dtype=np.int64) for i in (0, 1))
    stamps = np.array([v[2] for v in versions], dtype=np.int64)
    among = np.array([v[3] for v in versions], dtype=bool)
    newest: dict[tuple, int] = {}
    for row, (a, b, stamp, wanted) in enumerate(zip(first, second, stamps, among, strict=True)):
        if wanted and ((a, b) not in newest or stamp >= stamps[newest[a, b]]):
            newest[a, b] = row  # a later stamp wins; on a tie, the later read
    expected = [newest[key] for key in sorted(newest)]
    assert _latest(_key([first, second]), stamps, among).tolist() == expected


def test_a_csv_failing_its_own_schema_stops_without_showing_student_data():
    row = {"SchoolID": "101", "Student_Number": "200001", "Att_Date": "11/16/2026", "Att_Mode_Code": "ATT_ModeDaily",
           "Period": "", "Course_Number": "", "Section_Number": "", "Att_Code": "", "Presence_Status_CD": "Present",
           "Att_Comment": "", "Last_Modified": "2026-11-16T10:00:00Z"}
    rows = pd.DataFrame([row, row, {**row, "Student_Number": "200002", "Att_Date": "2026-11-16"}], dtype="str")
    with pytest.raises(CsvSchemaError) as raised:
        check_csv(rows)
    message = str(raised.value)
    assert "Att_Date fails str_fullmatch" in message and "multiple_fields_uniqueness" in message
    assert "200001" not in message and "200002" not in message and raised.value.__cause__ is None
