"""The ground truth: what a correct pipeline delivers and rejects for a district and window.

Written row by row in plain Python, independently of the pipeline's pandas transform, so that
the two can check each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from clever_attendance_sandbox.generator import District

HEADER = ("SchoolID", "Student_Number", "Att_Date", "Att_Mode_Code", "Period", "Course_Number",
          "Section_Number", "Att_Code", "Presence_Status_CD", "Att_Comment", "Last_Modified")
DEFAULT_CODE_MAP = [
    {"status": "present", "att_code": ""},
    {"status": "tardy", "att_code": "T"},
    {"status": "absent", "att_code": "A"},
]


@dataclass
class Truth:
    rows: list[tuple[str, ...]] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    read: int = 0
    superseded: int = 0


def _dates(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _code(record: dict, rules: list[dict]) -> tuple[str, str, str]:
    """(Att_Code, Presence_Status_CD, Att_Comment) by the first rule that matches."""
    for rule in rules:
        if all(rule[k] == record.get(f"attendance_{k}" if k != "excuse_code" else k)
               for k in ("type", "status", "excuse_code") if k in rule):
            presence = rule.get("presence") or ("Absent" if record["attendance_status"] == "absent"
                                                 else "Present")
            excuse = record.get("excuse_code") or ""
            comment = "" if "excuse_code" in rule else excuse[:255]
            return rule["att_code"], presence, comment
    raise ValueError(f"no code rule matches status {record['attendance_status']!r}")


def ground_truth(district: District, start: date, end: date, now: datetime, *,
                 code_map: list[dict] | None = None,
                 student_number_field: str = "student_number") -> Truth:
    """Rows in the pipeline's output order, rejects with their reason."""
    rules = list(code_map or []) + DEFAULT_CODE_MAP
    schools = {s["id"]: s for s in district.schools}
    students = {s["id"]: s["roles"]["student"] for s in district.students}
    sections = {s["id"]: s for s in district.sections}
    courses = {c["id"]: c for c in district.courses}
    truth = Truth()
    latest: dict[tuple, dict] = {}
    for school_id in schools:
        for day in _dates(start, end):
            for record in district.attendance(school_id, day, now):
                truth.read += 1
                key = (record["attendance_date"], record["student_id"],
                       record.get("section_id", ""), record["school_id"])
                if key in latest:
                    truth.superseded += 1
                    if record["last_modified"] <= latest[key]["last_modified"]:
                        continue
                latest[key] = record
    delivered: dict[tuple, tuple] = {}
    for record in latest.values():
        def reject(reason: str, r: dict = record) -> None:
            truth.rejects.append({"reason": reason, "attendance_date": r["attendance_date"],
                                  "school_id": r["school_id"], "student_id": r["student_id"],
                                  "section_id": r.get("section_id", "")})
        student = students.get(record["student_id"])
        if student is None:
            reject("unknown_student")
            continue
        number = student.get(student_number_field) or student["sis_id"]
        if not number:
            reject("no_student_number")
            continue
        school = schools[record["school_id"]]
        period = course = section_number = ""
        if record["attendance_type"] == "section":
            if not record.get("section_id"):
                reject("missing_section")
                continue
            section = sections.get(record["section_id"])
            if section is None:
                reject("unknown_section")
                continue
            period = section["period"] or ""
            course = courses[section["course"]]["number"]
            section_number = section["section_number"] or section["sis_id"]
        y, m, d = record["attendance_date"].split("-")
        mode = "ATT_ModeDaily" if record["attendance_type"] == "daily" else "ATT_ModeMeeting"
        row = (school["school_number"] or school["sis_id"], number, f"{m}/{d}/{y}", mode, period,
               course, section_number, *_code(record, rules), record["last_modified"])
        identity = (row[0], row[1], row[2], row[3], row[4], row[6])
        if identity in delivered:
            raise AssertionError(f"generator bug: two records share output identity {identity}")
        delivered[identity] = row
    truth.rows = sorted(delivered.values(), key=row_order)
    truth.rejects.sort(key=lambda r: (r["attendance_date"], r["school_id"], r["student_id"],
                                      r["section_id"]))
    return truth


def configured_truth(district: District, configured, start: date, end: date, now: datetime) -> Truth:
    """The truth under a pipeline's district settings: anything with `code_map` rules (objects whose
    attributes are the rule's keys) and `student_number_field`."""
    rules = [{k: v for k, v in vars(rule).items() if v is not None} for rule in configured.code_map]
    return ground_truth(district, start, end, now, code_map=rules,
                        student_number_field=configured.student_number_field)


def row_order(row: tuple[str, ...]) -> tuple:
    """The pipeline's output order: date, school, student, mode, period, section."""
    m, d, y = row[2].split("/")
    return (y, m, d, row[0], row[1], row[3], row[4], row[6])
