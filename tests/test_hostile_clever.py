"""Clever's data as hostile input: every bad value a reject with its reason, no shifted row, no token off-host.

A stand-in Clever on a loopback port serves what a hostile (or broken) Clever could: lone surrogates, JSON
numbers for numbers, formulas and line breaks in student numbers, CSV lines inside an excuse code, dates that
do not exist, `next` links to another host. The pipeline's own code reads it, over HTTP, into its files.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import random
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath

from clever_attendance.contracts import Window
from clever_attendance.errors import CleverContractError
from clever_attendance.hooks.clever import CleverHook
from clever_attendance.pipeline import config, extract_step, staged_csv
from clever_attendance.pipeline.columns import CLEVER_FIELDS
from clever_attendance.pipeline.schemas import FAULT, UNUSABLE
from clever_attendance.pipeline.transform import REASONS, Roster, transform
from clever_attendance.pipeline.transform_step import transform_staged
from clever_attendance.retry_policy import Decision, rule_for

DAY = date(2026, 11, 16)
STAMP = "2026-11-16T08:00:00Z"


def cid(name: str) -> str:
    """A Clever-like id: 24 lowercase hex."""
    return hashlib.sha1(name.encode()).hexdigest()[:24]


class Standin:
    """A stand-in Clever on a loopback port: JSON text per path (or path and query), every request recorded."""

    def __init__(self, port: int = 0) -> None:
        self.routes: dict[str, str] = {}
        self.missing = json.dumps({"message": "not found"})  # the body of a 404
        self.seen: list[tuple[str, str | None]] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
                standin.seen.append((self.path, self.headers.get("Authorization")))
                body = standin.routes.get(self.path, standin.routes.get(self.path.split("?")[0]))
                payload = (body or standin.missing).encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        # shutdown() waits out the loop's poll interval (0.5 s by default): a second per test of two stand-ins
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def page(self, path: str, items: list, next_link: object = None) -> None:
        links = [{"rel": "next", "uri": next_link}] if next_link is not None else []
        self.routes[path] = json.dumps({"data": items, "links": links})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def clever_and_thief():
    """The stand-in on a 4-digit port P, and a listener on port P7: "7/steal" appended to Clever's base URL
    http://127.0.0.1:P names the listener (http://127.0.0.1:P7/steal), as a relative link would."""
    for port in random.sample(range(1024, 6553), 300):
        try:
            thief = Standin(port * 10 + 7)
        except OSError:
            continue
        try:
            clever = Standin(port)
        except OSError:
            thief.close()
            continue
        yield clever, thief
        clever.close()
        thief.close()
        return
    pytest.skip("no free pair of loopback ports")


# --- 4. the district's token stays on Clever's host ---------------------------------------------------------


@pytest.mark.parametrize("link", [
    "7/steal",  # appended to http://127.0.0.1:P: port P7
    "//127.0.0.1:{thief}/steal",
    "http://127.0.0.1:{thief}/steal",
    "http://127.0.0.1:{clever}@127.0.0.1:{thief}/steal",
    "{clever_url}@127.0.0.1:{thief}/steal",
    "{clever_url}.evil.example/steal",
    "https://evil.example/steal",
    "/\\\\evil.example/steal",
    "/v3.1/users?x=1 HTTP/1.1\r\nHost: evil.example",
    "",
    42,
])
def test_a_next_link_off_the_api_host_fails_at_once_and_the_token_goes_nowhere(clever_and_thief, clever_conn, link):
    clever, thief = clever_and_thief
    port = clever.url.rsplit(":", 1)[1]
    if isinstance(link, str):
        link = link.format(thief=thief.url.rsplit(":", 1)[1], clever=port, clever_url=clever.url)
    district = cid("district")
    clever.page("/v3.1/users", [{"data": {"id": cid("s1"), "roles": {"student": {"student_number": "1"}}}}], link)
    hook = CleverHook(district, clever_conn({"clever_url": clever.url}, mode="district-token"))
    with pytest.raises(CleverContractError) as raised:
        list(hook.iter_students())
    assert thief.seen == [], "nothing, least of all the token, reached another host"
    assert [path for path, _ in clever.seen] == ["/v3.1/users?role=student&limit=10000"], "no retry, no follow"
    error = raised.value
    assert str(error) == (f"Clever contract broken for district {district} during GET /v3.1/users: "
                          "a next link that is not a path on the API host")
    assert (rule_for(error).category, rule_for(error).decision) == ("Clever contract changed", Decision.FAIL)


def test_next_links_on_the_api_host_are_followed_as_path_or_full_url(clever_and_thief, clever_conn):
    clever, thief = clever_and_thief
    students = [{"id": cid(f"s{n}"), "roles": {"student": {"student_number": str(n)}}} for n in range(3)]
    clever.page("/v3.1/users", [{"data": students[0]}], "/v3.1/users?page=2")
    clever.page("/v3.1/users?page=2", [{"data": students[1]}], f"{clever.url}/v3.1/users?page=3")
    clever.page("/v3.1/users?page=3", [{"data": students[2]}])
    hook = CleverHook(cid("district"), clever_conn({"clever_url": clever.url}, mode="district-token"))
    assert list(hook.iter_students()) == students
    assert clever.seen == [("/v3.1/users?role=student&limit=10000", "Bearer district-token"),
                           ("/v3.1/users?page=2", "Bearer district-token"),
                           ("/v3.1/users?page=3", "Bearer district-token")]
    assert thief.seen == []


def test_clevers_error_message_is_quoted_on_one_printable_line(clever_and_thief, clever_conn):
    clever, _ = clever_and_thief
    clever.missing = json.dumps({"message": "no such district\r\nX-Injected: \ud800\u202e\x1b[2J"})
    hook = CleverHook(cid("district"), clever_conn({"clever_url": clever.url}, mode="district-token"))
    with pytest.raises(CleverContractError) as raised:
        hook.get_district()
    assert raised.value.detail == "HTTP 404: no such district??X-Injected: ???[2J"


# --- 1-3. hostile values, from Clever's JSON to the district's files ------------------------------------------

DISTRICT, GOOD_SCHOOL, FORMULA_SCHOOL = cid("district"), cid("school-1"), cid("school-2")
SECTION, BROKEN_SECTION, COURSE = cid("section-1"), cid("section-2"), cid("course-1")
FORGED = "ILL\r\n2026-11-16,absent,daily,2026-11-16T08:00:00Z,2026-11-16T08:00:00Z,d,s,forged"


def student(name: str, **numbers: object) -> dict:
    return {"id": cid(name), "name": {"first": "Zoë", "last": "O'Brien"}, "roles": {"student": {
        "school": GOOD_SCHOOL, **numbers}}}


STUDENTS = [
    student("a", student_number="200001", sis_id="900001"),
    student("json-number", student_number=1e5, sis_id="900002"),  # JSON 1e5: Python's 100000.0
    student("bool", student_number=True, sis_id="900003"),
    student("object", student_number={"$numberLong": "200004"}),
    student("space", student_number="2000 05"),
    student("newline", student_number="200006\n"),
    student("formula", student_number="=1+2"),
    student("at", student_number="@SUM(A1)"),
    student("surrogate", student_number="\ud800"),
    student("too-long", student_number="9" * 33),
    student("sis-only", student_number=None, sis_id="900010"),
    student("sis-formula", student_number=None, sis_id="+900011"),
    {"id": cid("roles-list"), "roles": ["student"]},
    {"id": 12345, "roles": {"student": {"student_number": "200013"}}},  # no Clever id: left out
    student("k", student_number="200014"),
]


def record(who: str, school: str = GOOD_SCHOOL, **fields: object) -> dict:
    return {"attendance_date": DAY.isoformat(), "attendance_status": "present", "attendance_type": "daily",
            "created": STAMP, "last_modified": STAMP, "district_id": DISTRICT, "school_id": school,
            "student_id": cid(who), **fields}


GOOD_SCHOOL_RECORDS = [
    record("a"),
    *(record(who, attendance_status="absent") for who in (
        "json-number", "bool", "object", "space", "newline", "formula", "at", "surrogate", "too-long",
        "sis-formula")),
    record("sis-only", attendance_status="tardy"),
    record("roles-list"),
    record("k", attendance_status="absent", excuse_code="\ud800"),
    record("k", attendance_status="absent", excuse_code=FORGED, attendance_type="section", section_id=SECTION),
    record("k", attendance_status="absent", excuse_code='Bus late, "again"', attendance_type="section",
           section_id=cid("section-3")),
    record("k", attendance_type="section", section_id=BROKEN_SECTION),
    record("k", attendance_status="absent", excuse_code="x" * 300, sis_id="\udfff"),
    record("a", attendance_date="2026-11-16\n"),
    record("a", attendance_date="2026-02-30"),
    record("a", attendance_date="２０２６-11-16"),
    record("a", student_id=12345),
    record("a", school_id="x\ny"),
    record("a", section_id="../../oauth", attendance_type="section"),
    record("a", attendance_status=True),
    record("a", last_modified="2026-11-16T08:00:00Z\n=cmd"),
    "not a record",
]
SECTIONS = [
    {"id": SECTION, "school": GOOD_SCHOOL, "course": COURSE, "period": "1", "section_number": "1-1"},
    {"id": cid("section-3"), "school": GOOD_SCHOOL, "course": COURSE, "period": "2", "section_number": None,
     "sis_id": "SEC00003"},
    {"id": BROKEN_SECTION, "school": {"id": GOOD_SCHOOL}, "course": COURSE, "period": "1\n2",
     "section_number": "1-2"},
]


@pytest.fixture
def hostile_clever():
    clever = Standin()
    clever.routes[f"/v3.1/districts/{DISTRICT}"] = json.dumps(
        {"data": {"id": DISTRICT, "last_attendance_sync": "2026-11-16T20:00:00Z\n<script>"}})
    clever.page("/v3.1/schools", [{"data": {"id": GOOD_SCHOOL, "school_number": "101", "sis_id": "SCH1"}},
                                  {"data": {"id": FORMULA_SCHOOL, "school_number": "=HYPERLINK(1)"}},
                                  {"data": {"id": ["not", "an", "id"]}}, {"uri": "/no/data"}])
    clever.page("/v3.1/users", [{"data": s} for s in STUDENTS])
    clever.page("/v3.1/sections", [{"data": s} for s in SECTIONS])
    clever.page("/v3.1/courses", [{"data": {"id": COURSE, "number": "MATH7"}}])
    clever.page(f"/v3.1/attendance/schools/{GOOD_SCHOOL}", GOOD_SCHOOL_RECORDS)
    clever.page(f"/v3.1/attendance/schools/{FORMULA_SCHOOL}", [record("a", school=FORMULA_SCHOOL)])
    yield clever
    clever.close()


def test_hostile_values_are_rejects_with_their_reason_never_rows_or_a_failed_district(
        hostile_clever, clever_conn, tmp_path, caplog, capsys):
    caplog.set_level(logging.INFO)
    district = dataclasses.replace(config.load().district("springfield"), slug="hostile",
                                   clever_district_id=DISTRICT,
                                   clever_conn_id=clever_conn({"clever_url": hostile_clever.url}, mode="tok"))
    (tmp_path / "run").mkdir()
    folder = ObjectStoragePath(f"file://{tmp_path}/run")
    manifest = extract_step.extract(district, Window(DAY, DAY), folder, None, False, 7)
    assert manifest.records == len(GOOD_SCHOOL_RECORDS) + 1
    assert manifest.last_attendance_sync is None, "not a time: unknown, never stored or compared"
    assert manifest.roster == {"students": 14, "schools": 2, "sections": 3, "courses": 1}
    assert manifest.clever["unusable_roster"] == 1, "the school item without a data object"
    done = transform_staged(district, manifest)

    with open(ObjectStoragePath(done.csv_path).path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["SchoolID", "Student_Number", "Att_Date", "Att_Mode_Code", "Period", "Course_Number", "Section_Number",
         "Att_Code", "Presence_Status_CD", "Att_Comment", "Last_Modified"],
        ["101", "200001", "11/16/2026", "ATT_ModeDaily", "", "", "", "", "Present", "", STAMP],
        ["101", "200014", "11/16/2026", "ATT_ModeMeeting", "2", "MATH7", "SEC00003", "A", "Absent",
         'Bus late, "again"', STAMP],
        ["101", "900010", "11/16/2026", "ATT_ModeDaily", "", "", "", "T", "Present", "", STAMP],
    ]
    with open(ObjectStoragePath(done.rejects_path).path, newline="", encoding="utf-8") as f:
        rejects = [tuple(r[:6]) for r in list(csv.reader(f))[1:]]
    a, k, day = cid("a"), cid("k"), DAY.isoformat()
    not_a_number = "student_number (else sis_id) is not a valid number"
    assert sorted(rejects) == sorted([
        ("invalid_record", "attendance_date fails not_nullable", "", "", "", ""),  # not an object
        ("invalid_record", "attendance_date fails str_fullmatch(pattern=[0-9]{4}-[0-9]{2}-[0-9]{2})", "",
         GOOD_SCHOOL, a, ""),
        ("invalid_record", "attendance_date fails str_fullmatch(pattern=[0-9]{4}-[0-9]{2}-[0-9]{2})", "",
         GOOD_SCHOOL, a, ""),
        ("invalid_record", "attendance_date is not a calendar date", "", GOOD_SCHOOL, a, ""),
        ("invalid_record", "student_id is not a string", day, GOOD_SCHOOL, "", ""),
        ("invalid_record", "school_id fails str_fullmatch(pattern=[0-9A-Za-z_-]{1,64})", day, "", a, ""),
        ("invalid_record", "section_id fails str_fullmatch(pattern=[0-9A-Za-z_-]{1,64})", day, GOOD_SCHOOL, a, ""),
        ("invalid_record", "attendance_status is not a string", day, GOOD_SCHOOL, a, ""),
        ("invalid_record", "last_modified fails str_fullmatch(pattern=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                           r"[0-9]{2}(\.[0-9]{1,9})?(Z|\+00:00))", day, GOOD_SCHOOL, a, ""),
        ("invalid_record", "excuse_code is not valid Unicode", day, GOOD_SCHOOL, k, ""),
        ("invalid_record", "sis_id is not valid Unicode", day, GOOD_SCHOOL, k, ""),
        ("invalid_record", "excuse_code fails no_control_characters", day, GOOD_SCHOOL, k, SECTION),
        ("invalid_roster_value", "the section's period is not a valid number", day, GOOD_SCHOOL, k, BROKEN_SECTION),
        ("invalid_roster_value", "the school has no valid school_number (else sis_id)", day, FORMULA_SCHOOL, a, ""),
        ("no_student_number", "", day, GOOD_SCHOOL, cid("roles-list"), ""),
        *(("invalid_student_number", not_a_number, day, GOOD_SCHOOL, cid(who), "") for who in (
            "json-number", "bool", "object", "space", "newline", "formula", "at", "surrogate", "too-long",
            "sis-formula")),
    ])
    counts = done.counts
    assert (counts.read, counts.delivered, counts.rejected, counts.superseded) == (28, 3, 25, 0)
    assert set(counts.days) == {"", day}, "only real dates (or none) are keys of the counts"
    assert set(counts.rejected_by_reason) <= set(REASONS)
    told = json.dumps([manifest.to_xcom(), done.to_xcom()]) + caplog.text + capsys.readouterr().out
    for secret in ("200001", "200014", "900010", "=1+2", "2000 05", "Zoë", "O'Brien"):
        assert secret not in told, "no student data in XCom or logs"


def staged_raw(rows: list[dict], path: Path) -> None:
    """Records staged as the extract task stages them."""
    with extract_step._text(ObjectStoragePath(f"file://{path}")) as out:
        staged_csv.write_records(map(staged_csv.staged_record, rows), staged_csv.RAW_FIELDS, out)


HOSTILE_TEXT = ["line\nbreak", "carriage\rreturn", "crlf\r\nend", "\r\n", "\n", '"', '"quoted", comma,',
                "nul\x00byte", "sep\u2028arator", "trailing\r", "Zoë 漢字 😀", "  padded  ", "=1+2", "\x1b[31m",
                "é\r\n\r\n\n\n\"\"\","]


def test_a_staged_file_over_many_blocks_gives_back_every_value_and_no_forged_row(tmp_path):
    """Over 3 MiB (the reader works in 1 MiB blocks): a block boundary inside a quoted multi-line value, CSV
    lines inside values, every kind of line break, quotes, commas and NUL come back exactly, row for row."""
    rows = []
    for n in range(6_000):
        forged = "\n".join(f"{DAY},absent,daily,{STAMP},{STAMP},{DISTRICT},{GOOD_SCHOOL},{cid('forged')},,,"
                           for _ in range(4))
        excuse = f"{HOSTILE_TEXT[n % len(HOSTILE_TEXT)]}\n{forged}\r\n" + "x" * (n % 97)
        rows.append(record(f"s{n % 50}", attendance_status="absent", excuse_code=excuse,
                           sis_id=HOSTILE_TEXT[(n * 7) % len(HOSTILE_TEXT)]))
    path = tmp_path / "raw.csv"
    staged_raw(rows, path)
    data = path.read_bytes()
    assert len(data) > 3 * 2**20
    for boundary in (2**20, 2 * 2**20, 3 * 2**20):
        assert data[:boundary].count(b'"') % 2 == 1, "the block boundary falls inside a quoted value"
    frame = staged_csv.read_raw(path)
    back = frame.astype(object).where(frame.notna(), None).to_dict("records")
    assert back == [{**dict.fromkeys(CLEVER_FIELDS), **r, FAULT: None} for r in rows]


def test_staged_roster_tables_give_back_every_value(tmp_path):
    students = [{"id": cid(f"s{n}"), "roles": {"student": {"student_number": text, "sis_id": f"{n}\r\n{text}",
                                                            "state_id": None}}}
                for n, text in enumerate(HOSTILE_TEXT * 2000)]
    roster = {"students": students, "schools": [], "sections": [], "courses": [{"id": "c", "number": 7}]}
    staged_csv.write_roster(roster, lambda name: extract_step._text(ObjectStoragePath(f"file://{tmp_path}/{name}.csv")))
    assert (tmp_path / "students.csv").stat().st_size > 2**20
    got = staged_csv.read_roster(lambda name: open(tmp_path / f"{name}.csv", "rb"))
    assert got.students["student_number"].tolist() == HOSTILE_TEXT * 2000
    assert got.students["sis_id"].tolist() == [f"{n}\r\n{t}" for n, t in enumerate(HOSTILE_TEXT * 2000)]
    assert got.courses["number"].tolist() == [UNUSABLE], "a JSON number is not stringified"


def roster(**numbers: str | None) -> Roster:
    return Roster(
        students=pd.DataFrame([{"id": cid(who), "student_number": n, "sis_id": None, "state_id": None}
                               for who, n in numbers.items()], dtype="str").set_index("id"),
        schools=pd.DataFrame({"id": [GOOD_SCHOOL], "school_number": ["101"], "sis_id": [None]}, dtype="str"
                             ).set_index("id"),
        sections=pd.DataFrame(columns=["id", "school", "course", "period", "section_number", "sis_id"],
                              dtype="str").set_index("id"),
        courses=pd.DataFrame(columns=["id", "number"], dtype="str").set_index("id"))


@pytest.mark.parametrize("field", CLEVER_FIELDS)
@pytest.mark.parametrize("value,why", [("\ud800", "is not valid Unicode"), ("a\udfffb", "is not valid Unicode"),
                                       (7, "is not a string"), (1e5, "is not a string"), (False, "is not a string"),
                                       ({"a": 1}, "is not a string"), (["x"], "is not a string")])
def test_a_value_that_cannot_be_staged_is_an_invalid_record_naming_its_field(field, value, why, tmp_path):
    rows = [record("a"), record("a", **{field: value}), record("b")]
    staged_raw(rows, tmp_path / "raw.csv")
    result = transform(staged_csv.read_raw(tmp_path / "raw.csv"), roster(a="200001", b="200002"),
                       config.load().district("springfield"), DAY, DAY)
    assert result.csv["Student_Number"].tolist() == ["200001", "200002"]
    assert result.rejects[["reason", "detail"]].values.tolist() == [["invalid_record", f"{field} {why}"]]
    assert result.counts.read == 3 == result.counts.delivered + result.counts.rejected
