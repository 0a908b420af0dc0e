"""The files a run stages, as CSV, written and read back: Clever records and roster lookups in, the attendance CSV
and its rejects out (`write_frame`, the CSV writer).

Only the fields the transform needs are staged: no student names ever reach the disk. Staged files are
CSV (RFC 4180, CRLF line ends: the csv module then quotes every value holding a quote, comma, CR or LF),
read back with values allowed to span lines, so any text Clever sends comes back as it was sent. A value
that cannot be text (a JSON number, bool or object where Clever's contract has a string, or a string with
a lone surrogate, which has no UTF-8) is never written as such: see `staged_record` and `_stageable`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from clever_attendance.pipeline.columns import CLEVER_FIELDS
from clever_attendance.pipeline.schemas import FAULT, UNUSABLE
from clever_attendance.pipeline.transform import Roster

RAW_FIELDS = [*CLEVER_FIELDS, FAULT]
ROSTER_FIELDS = {
    "students": ["id", "student_number", "sis_id", "state_id"],
    "schools": ["id", "school_number", "sis_id"],
    "sections": ["id", "school", "course", "period", "section_number", "sis_id"],
    "courses": ["id", "number"],
}


def unstageable(value: object) -> str | None:
    """Why a Clever value cannot be staged as text, or None: missing (None) is staged as empty."""
    if value is None or (type(value) is str and value.isascii()):
        return None
    if type(value) is not str:
        return "is not a string"
    try:
        value.encode()
    except UnicodeEncodeError:
        return "is not valid Unicode"
    return None


def staged_record(record: dict) -> dict:
    """A Clever record as the raw file holds it: a value that cannot be staged is left out, and the first
    such field named in FAULT (the transform rejects the record with it)."""
    faults = [(name, why) for name, value in record.items() if (why := unstageable(value))]
    if not faults:
        return record
    name, why = faults[0]
    return {**{k: None if unstageable(v) else v for k, v in record.items()}, FAULT: f"{name} {why}"}


def _stageable(value: object) -> object:
    """A roster value, or UNUSABLE: its student (school, section) is then one without a valid number, not one
    without any."""
    return UNUSABLE if unstageable(value) else value


def _student_row(user: dict) -> dict:
    """A Clever user's SIS numbers, without the name or anything else."""
    roles = user.get("roles")
    student = roles.get("student") if isinstance(roles, dict) else None
    student = student if isinstance(student, dict) else {}
    return {"id": user["id"], **{k: student.get(k) for k in ("student_number", "sis_id", "state_id")}}


def write_records(rows: Iterable[dict], fields: list[str], out: IO[str]) -> int:
    """Write dicts as CSV with a fixed header (None as empty); returns the rows written. `out` is a text file
    opened with newline="" (the csv module writes its own line ends)."""
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow(row)
        n += 1
    return n


def write_roster(roster: dict[str, Iterable[dict]], open_table: Callable[[str], IO[str]]) -> dict[str, int]:
    """Stage the four roster tables from Clever's objects; `open_table(name)` opens one for text writing.
    Returns the rows written per table."""
    written = {}
    for name, fields in ROSTER_FIELDS.items():
        with open_table(name) as out:
            rows = map(_student_row, roster[name]) if name == "students" else roster[name]
            staged = ({k: _stageable(row.get(k)) for k in fields} for row in rows)
            written[name] = write_records(staged, fields, out)
    return written


def read_table(source: IO[bytes] | str, fields: list[str], index: str | None = None) -> pd.DataFrame:
    """A staged CSV (a path or a binary file) as strings, empty cells and absent columns as missing."""
    table = pv.read_csv(source, parse_options=pv.ParseOptions(newlines_in_values=True),
                        convert_options=pv.ConvertOptions(
                            column_types=dict.fromkeys(fields, pa.string()), include_columns=fields,
                            include_missing_columns=True, strings_can_be_null=True, null_values=[""]))
    frame = table.to_pandas()
    return frame.set_index(index) if index else frame


def read_raw(source: IO[bytes] | str) -> pd.DataFrame:
    """A staged raw file: Clever's fields and FAULT."""
    return read_table(source, RAW_FIELDS)


def read_roster(open_table) -> Roster:
    """The roster from its four staged tables; `open_table(name)` opens one for binary reading."""
    tables = {}
    for name, fields in ROSTER_FIELDS.items():
        with open_table(name) as f:
            tables[name] = read_table(f, fields, index="id")
    return Roster(**tables)


def _field(values: pd.Series) -> pa.Array:
    """A column as CSV text: RFC 4180 quotes only where a value holds a comma, quote or line break."""
    text = pc.fill_null(pa.chunked_array(pa.array(values.array)).combine_chunks().cast(pa.large_string()), "")
    data = text.buffers()[2]
    raw = data.to_pybytes() if data is not None else b""
    if not any(c in raw for c in (b",", b'"', b"\n", b"\r")):  # most columns: a memchr, not a regex per value
        return text
    needs = pc.match_substring_regex(text, r'[",\r\n]')
    quote, nothing = pa.scalar('"', pa.large_string()), pa.scalar("", pa.large_string())
    quoted = pc.binary_join_element_wise(quote, pc.replace_substring(text, '"', '""'), quote, nothing)
    return pc.if_else(needs, quoted, text)


def write_frame(frame: pd.DataFrame, out: IO[bytes], header: bool = True) -> None:
    """The frame as UTF-8 CSV with a header, `\\n` line ends, minimal quoting (the csv module's bytes).

    Joined column-wise in Arrow and written as one buffer: pandas' own writer takes seconds for a
    million rows.
    """
    if header:
        out.write((",".join(frame.columns) + "\n").encode())  # our own column names: nothing to quote
    if not len(frame):
        return
    fields = [_field(frame[c]) for c in frame.columns]
    newline, nothing = pa.scalar("\n", pa.large_string()), pa.scalar("", pa.large_string())
    fields[-1] = pc.binary_join_element_wise(fields[-1], newline, nothing)
    lines = pc.binary_join_element_wise(*fields, pa.scalar(",", pa.large_string()))
    # a large_string array without nulls is its lines laid end to end in one data buffer
    offsets, data = lines.buffers()[1], lines.buffers()[2]
    first, last = (int(x) for x in np.frombuffer(offsets, dtype=np.int64)[[lines.offset, lines.offset + len(lines)]])
    out.write(memoryview(data)[first:last])
