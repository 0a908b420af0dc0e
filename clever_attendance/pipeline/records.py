"""The files a run stages: Clever records and roster lookups in, the CSV and its rejects out.

Only the fields the transform needs are staged: no student names ever reach the disk.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clever_attendance.pipeline.schemas import CLEVER_FIELDS
from clever_attendance.pipeline.transform import Roster

ROSTER_FIELDS = {
    "students": ["id", "student_number", "sis_id", "state_id"],
    "schools": ["id", "school_number", "sis_id"],
    "sections": ["id", "school", "course", "period", "section_number", "sis_id"],
    "courses": ["id", "number"],
}


def _student_row(user: dict) -> dict:
    """A Clever user's SIS numbers, without the name or anything else."""
    student = (user.get("roles") or {}).get("student") or {}
    return {"id": user["id"], **{k: student.get(k) for k in ("student_number", "sis_id", "state_id")}}


def write_records(rows: Iterable[dict], fields: list[str], out: IO[str]) -> int:
    """Write dicts as CSV with a fixed header (None as empty); returns the rows written."""
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
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
            written[name] = write_records(rows, fields, out)
    return written


def read_table(source: IO[bytes] | str, fields: list[str], index: str | None = None) -> pd.DataFrame:
    """A staged CSV (a path or a binary file) as strings, empty cells as missing."""
    frame = pd.read_csv(source, dtype="str", keep_default_na=False, na_values=[""], usecols=fields,
                        engine="pyarrow")
    return frame.set_index(index) if index else frame


def read_raw(source: IO[bytes] | str) -> pd.DataFrame:
    return read_table(source, CLEVER_FIELDS)


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
