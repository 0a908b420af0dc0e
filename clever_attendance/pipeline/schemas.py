"""The two record shapes the pipeline trusts: Clever's attendance record and Safety Shield's CSV row, checked.

`AttendanceCsv` is the one place that defines the formats of the CSV's columns; their names and order are
`columns.CSV_COLUMNS` (light, for readers without pandas), which the models' fields follow.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa
from pandera import extensions
from pandera.typing import Series

from clever_attendance.errors import PipelineBug
from clever_attendance.pipeline.columns import IDENTITY

# Every pattern is matched whole (`str_fullmatch`) and spells its digits [0-9]: a `$` lets a trailing newline
# through, and `\d` matches any script's digits.
CLEVER_ID = r"[0-9A-Za-z_-]{1,64}"  # Clever's are 24 lowercase hex: bounded, so that a reject may name it
CLEVER_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
CLEVER_TIMESTAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|\+00:00)"
# a PowerSchool number (student, school, section, course, period): no spaces or control characters, and no
# leading = + - @ that a spreadsheet would run as a formula
NUMBER = r"[A-Za-z0-9][A-Za-z0-9._/-]{0,31}"
CONTROL = "[\x00-\x1f\x7f-\x9f\u2028\u2029]"  # control characters and Unicode's line breaks
CSV_DATE = r"[0-9]{2}/[0-9]{2}/[0-9]{4}"
CSV_TIMESTAMP = CLEVER_TIMESTAMP
MODES = {"daily": "ATT_ModeDaily", "section": "ATT_ModeMeeting"}
PRESENCE = ("Present", "Absent")
MAX_COMMENT = 255  # the CSV's Att_Comment: free text of at most 255 characters
FAULT = "fault"  # the staged raw file's last column: why a record's value could not be staged, if it could not
# a value the CSV may not hold, where a value must stand: U+FFFD, the replacement character, which no NUMBER holds.
# Staged for a roster value that cannot be text; what the transform looks up for one not of its form.
UNUSABLE = "\ufffd"


def _per_value(values: pd.Series, test: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """`test` of each value, run once per distinct value: ids and dates repeat a thousandfold."""
    codes, uniques = pd.factorize(values)
    passed = np.append(test(pd.Series(uniques, dtype="str")).to_numpy(bool), True)  # code -1: missing
    return pd.Series(passed[codes], index=values.index)


@extensions.register_check_method(statistics=["pattern"])
def str_fullmatch(values: pd.Series, *, pattern: str) -> pd.Series:
    """The whole value matches `pattern`."""
    return _per_value(values, lambda distinct: distinct.str.fullmatch(f"(?:{pattern})"))


@extensions.register_check_method
def no_control_characters(values: pd.Series) -> pd.Series:
    """The value holds no control character or line break."""
    return _per_value(values, lambda distinct: ~distinct.str.contains(CONTROL))


class CleverAttendance(pa.DataFrameModel):
    """One record of Clever's attendance API (v3.1 preview), as the hook passes it on (`columns.CLEVER_FIELDS`)."""

    attendance_date: Series[str] = pa.Field(str_fullmatch=CLEVER_DATE)
    attendance_status: Series[str] = pa.Field(isin=["present", "absent", "tardy"])
    attendance_type: Series[str] = pa.Field(isin=list(MODES))
    created: Series[str] = pa.Field(str_fullmatch=CLEVER_TIMESTAMP)
    last_modified: Series[str] = pa.Field(str_fullmatch=CLEVER_TIMESTAMP)
    district_id: Series[str] = pa.Field(str_fullmatch=CLEVER_ID)
    school_id: Series[str] = pa.Field(str_fullmatch=CLEVER_ID)
    student_id: Series[str] = pa.Field(str_fullmatch=CLEVER_ID)
    section_id: Series[str] = pa.Field(nullable=True, str_fullmatch=CLEVER_ID)
    excuse_code: Series[str] = pa.Field(nullable=True, no_control_characters=())
    sis_id: Series[str] = pa.Field(nullable=True)

    class Config:
        strict = "filter"  # unknown fields are Clever's business, not ours
        coerce = False


class AttendanceCsv(pa.DataFrameModel):
    """One row of the PowerSchool attendance CSV (format version 1), columns in file order."""

    SchoolID: Series[str] = pa.Field(str_fullmatch=NUMBER)  # noqa: N815 - the file's own names
    Student_Number: Series[str] = pa.Field(str_fullmatch=NUMBER)  # noqa: N815
    Att_Date: Series[str] = pa.Field(str_fullmatch=CSV_DATE)  # noqa: N815
    Att_Mode_Code: Series[str] = pa.Field(isin=list(MODES.values()))  # noqa: N815
    Period: Series[str] = pa.Field(str_fullmatch=f"({NUMBER})?")  # noqa: N815
    Course_Number: Series[str] = pa.Field(str_fullmatch=f"({NUMBER})?")  # noqa: N815
    Section_Number: Series[str] = pa.Field(str_fullmatch=f"({NUMBER})?")  # noqa: N815
    Att_Code: Series[str]  # noqa: N815
    Presence_Status_CD: Series[str] = pa.Field(isin=list(PRESENCE))  # noqa: N815
    Att_Comment: Series[str] = pa.Field(str_length={"max_value": MAX_COMMENT}, no_control_characters=())  # noqa: N815
    Last_Modified: Series[str] = pa.Field(str_fullmatch=CSV_TIMESTAMP)  # noqa: N815

    class Config:
        strict = True
        ordered = True
        unique = IDENTITY

    @pa.dataframe_check
    @classmethod
    def meeting_rows_name_their_section(cls, df):
        """A daily row has no period, course or section; a meeting row has at least its section."""
        daily = df["Att_Mode_Code"] == MODES["daily"]
        bare = (df["Period"] == "") & (df["Course_Number"] == "") & (df["Section_Number"] == "")
        return (daily & bare) | (~daily & (df["Section_Number"] != ""))


class CsvSchemaError(PipelineBug):
    """The CSV failed its own schema: a bug in the transform, not a fault in Clever's data."""


def check_csv(rows: pd.DataFrame) -> None:
    """Validate CSV rows; a failure names columns, checks and row counts, never values (they are student data)."""
    try:
        AttendanceCsv.validate(rows, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        found = errors.failure_cases.groupby(["column", "check"], dropna=False).size()
        summary = "; ".join(f"{column} fails {check} ({n} values)" for (column, check), n in found.items())
        raise CsvSchemaError(f"attendance.csv fails its own schema, a bug in the transform: {summary}") from None
