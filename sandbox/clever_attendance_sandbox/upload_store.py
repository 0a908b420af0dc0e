"""Safety Shield's side of the import: file and row validation, and the upsert store in SQLite."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime

from clever_attendance_sandbox.truth import HEADER, row_order

IDENTITY = ("SchoolID", "Student_Number", "Att_Date", "Att_Mode_Code", "Period", "Section_Number")
MODES = {"ATT_ModeDaily", "ATT_ModeMeeting"}
PRESENCE = {"Present", "Absent"}
MAX_ERRORS = 100
SCHEMA = """
create table if not exists uploads (
  upload_id text primary key, district_id text, file_type text, source_system text,
  idempotency_key text unique, sha256 text, status text, rows_received int default 0,
  rows_imported int default 0, rows_rejected int default 0, errors text default '[]',
  received_at text, completed_at text);
create table if not exists rows (
  district_id text, SchoolID text, Student_Number text, Att_Date text, Att_Mode_Code text,
  Period text, Course_Number text, Section_Number text, Att_Code text, Presence_Status_CD text,
  Att_Comment text, Last_Modified text, modified_us int, writes int default 1,
  primary key (district_id, SchoolID, Student_Number, Att_Date, Att_Mode_Code, Period, Section_Number));
"""


class FileRefusedError(Exception):
    """The whole file is refused: nothing of it is imported."""


@dataclass
class ImportResult:
    received: int = 0
    imported: int = 0
    rejected: int = 0
    errors: list[dict] = field(default_factory=list)

    def reject(self, line: int, column: str, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"line": line, "column": column, "message": message})


def parse_timestamp(value: str) -> int:
    """Microseconds since the epoch of a `YYYY-MM-DDTHH:MM:SS[.f](Z|+00:00)` UTC timestamp."""
    if "T" not in value or not (value.endswith("Z") or value.endswith("+00:00")):
        raise ValueError(value)
    moment = datetime.fromisoformat(value)
    return int(moment.timestamp() * 1_000_000)


def _row_fault(row: dict) -> tuple[str, str] | None:
    for column in IDENTITY[:4]:
        if not row[column]:
            return column, "required value missing"
    try:
        datetime.strptime(row["Att_Date"], "%m/%d/%Y")
        if len(row["Att_Date"]) != 10:
            raise ValueError
    except ValueError:
        return "Att_Date", "not a MM/DD/YYYY date"
    if row["Att_Mode_Code"] not in MODES:
        return "Att_Mode_Code", "unknown mode code"
    if row["Presence_Status_CD"] not in PRESENCE:
        return "Presence_Status_CD", "unknown presence status"
    if row["Att_Mode_Code"] == "ATT_ModeMeeting" and not row["Section_Number"]:
        return "Section_Number", "a meeting row needs its section"
    if row["Att_Mode_Code"] == "ATT_ModeDaily" and (row["Period"] or row["Course_Number"] or row["Section_Number"]):
        return "Period", "a daily row has no period, course or section"
    if len(row["Att_Comment"]) > 255:
        return "Att_Comment", "longer than 255 characters"
    try:
        parse_timestamp(row["Last_Modified"])
    except ValueError:
        return "Last_Modified", "not a UTC timestamp"
    return None


def validate(content: bytes) -> tuple[list[tuple[int, dict]], ImportResult]:
    """The rows fit to import, with their line numbers; raises FileRefusedError for a refused file."""
    if not content.strip():
        raise FileRefusedError("empty file")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRefusedError("not UTF-8") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    if tuple(header) != HEADER:  # quoting what it got, as a real service's free text may (student data included)
        raise FileRefusedError(f"header is not the PowerSchool attendance columns: got {','.join(header)[:200]}")
    result, good, seen = ImportResult(), [], set()
    for values in reader:
        line = reader.line_num
        result.received += 1
        if len(values) != len(HEADER):
            result.reject(line, "", f"expected {len(HEADER)} fields, found {len(values)}")
            continue
        row = dict(zip(HEADER, values, strict=False))
        fault = _row_fault(row)
        identity = tuple(row[c] for c in IDENTITY)
        if fault is None and identity in seen:
            fault = ("Student_Number", "identity repeated in the file")
        if fault:
            result.reject(line, *fault)
            continue
        seen.add(identity)
        good.append((line, row))
    return good, result


class Store:
    """Uploads and imported rows, in one SQLite file shared with tests through `imported_rows`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("pragma journal_mode=wal")
        self._db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.lock:
            return self._db.execute(sql, params).fetchall()

    def upsert(self, district_id: str, rows: list[tuple[int, dict]]) -> int:
        """Insert or replace when newer; returns how many rows changed."""
        sql = """
        insert into rows values (?,?,?,?,?,?,?,?,?,?,?,?,?,1)
        on conflict do update set Course_Number=excluded.Course_Number, Att_Code=excluded.Att_Code,
          Presence_Status_CD=excluded.Presence_Status_CD, Att_Comment=excluded.Att_Comment,
          Last_Modified=excluded.Last_Modified, modified_us=excluded.modified_us, writes=writes+1
        where excluded.modified_us > rows.modified_us"""
        with self.lock:
            before = self._db.total_changes
            self._db.execute("begin")
            self._db.executemany(sql, [
                (district_id, *(row[c] for c in HEADER), parse_timestamp(row["Last_Modified"]))
                for _, row in rows])
            self._db.execute("commit")
            return self._db.total_changes - before

    def upload(self, upload_id: str) -> dict | None:
        found = self.execute("select * from uploads where upload_id = ?", (upload_id,))
        return _upload_body(found[0]) if found else None


def _upload_body(row: tuple) -> dict:
    (upload_id, district_id, file_type, source, _key, _sha, status, received, imported, rejected,
     errors, received_at, completed_at) = row
    return {"uploadId": upload_id, "districtId": district_id, "fileType": file_type,
            "sourceSystem": source, "status": status, "rowsReceived": received,
            "rowsImported": imported, "rowsRejected": rejected, "errors": json.loads(errors),
            "receivedAt": received_at, "completedAt": completed_at}


def imported_rows(path: str, district_id: str) -> list[tuple[str, ...]]:
    """The rows Safety Shield holds for a district, as CSV tuples in the pipeline's order."""
    with sqlite3.connect(path) as db:
        rows = db.execute(f"select {', '.join(HEADER)} from rows where district_id = ?",
                          (district_id,)).fetchall()
    return sorted(rows, key=row_order)


def write_counts(path: str, district_id: str) -> int:
    """How many times rows of a district were written, in all: unchanged by a no-op re-run."""
    with sqlite3.connect(path) as db:
        return db.execute("select coalesce(sum(writes), 0) from rows where district_id = ?",
                          (district_id,)).fetchone()[0]
