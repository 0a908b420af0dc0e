"""The two record shapes the pipeline trusts: Clever's attendance record and Safety Shield's CSV row.

`AttendanceCsv` is the one place that defines the CSV's columns, their order and their formats.
"""

from __future__ import annotations

import pandas as pd
import pandera.errors
import pandera.pandas as pa
from pandera.typing import Series

from clever_attendance.errors import PipelineBug

CLEVER_DATE = r"^\d{4}-\d{2}-\d{2}$"
CLEVER_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$"
CSV_DATE = r"^\d{2}/\d{2}/\d{4}$"
CSV_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$"
MODES = {"daily": "ATT_ModeDaily", "section": "ATT_ModeMeeting"}
PRESENCE = ("Present", "Absent")


class CleverAttendance(pa.DataFrameModel):
    """One record of Clever's attendance API (v3.1 preview), as the hook passes it on."""

    attendance_date: Series[str] = pa.Field(str_matches=CLEVER_DATE)
    attendance_status: Series[str] = pa.Field(isin=["present", "absent", "tardy"])
    attendance_type: Series[str] = pa.Field(isin=list(MODES))
    created: Series[str] = pa.Field(str_matches=CLEVER_TIMESTAMP)
    last_modified: Series[str] = pa.Field(str_matches=CLEVER_TIMESTAMP)
    district_id: Series[str] = pa.Field(str_length={"min_value": 1})
    school_id: Series[str] = pa.Field(str_length={"min_value": 1})
    student_id: Series[str] = pa.Field(str_length={"min_value": 1})
    section_id: Series[str] = pa.Field(nullable=True)
    excuse_code: Series[str] = pa.Field(nullable=True)
    sis_id: Series[str] = pa.Field(nullable=True)

    class Config:
        strict = "filter"  # unknown fields are Clever's business, not ours
        coerce = False


class AttendanceCsv(pa.DataFrameModel):
    """One row of the PowerSchool attendance CSV (format version 1), columns in file order."""

    SchoolID: Series[str] = pa.Field(str_length={"min_value": 1})  # noqa: N815 - the file's own names
    Student_Number: Series[str] = pa.Field(str_length={"min_value": 1})  # noqa: N815
    Att_Date: Series[str] = pa.Field(str_matches=CSV_DATE)  # noqa: N815
    Att_Mode_Code: Series[str] = pa.Field(isin=list(MODES.values()))  # noqa: N815
    Period: Series[str]  # noqa: N815
    Course_Number: Series[str]  # noqa: N815
    Section_Number: Series[str]  # noqa: N815
    Att_Code: Series[str]  # noqa: N815
    Presence_Status_CD: Series[str] = pa.Field(isin=list(PRESENCE))  # noqa: N815
    Att_Comment: Series[str] = pa.Field(str_length={"max_value": 255})  # noqa: N815
    Last_Modified: Series[str] = pa.Field(str_matches=CSV_TIMESTAMP)  # noqa: N815

    class Config:
        strict = True
        ordered = True
        unique = ["SchoolID", "Student_Number", "Att_Date", "Att_Mode_Code", "Period", "Section_Number"]

    @pa.dataframe_check
    @classmethod
    def meeting_rows_name_their_section(cls, df):
        """A daily row has no period, course or section; a meeting row has at least its section."""
        daily = df["Att_Mode_Code"] == MODES["daily"]
        bare = (df["Period"] == "") & (df["Course_Number"] == "") & (df["Section_Number"] == "")
        return (daily & bare) | (~daily & (df["Section_Number"] != ""))


CSV_COLUMNS: list[str] = list(AttendanceCsv.to_schema().columns)
IDENTITY: list[str] = AttendanceCsv.Config.unique
CLEVER_FIELDS: list[str] = list(CleverAttendance.to_schema().columns)


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
