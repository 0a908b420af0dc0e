"""The names of the two records the pipeline trusts: the fields of Clever's attendance record and the columns of
the PowerSchool attendance CSV, in order. Light (no pandas, no pandera), for the hook and the guard's file splitting;
`schemas` holds the checks of each, under these names."""

from __future__ import annotations

CLEVER_REQUIRED = ("attendance_date", "attendance_status", "attendance_type", "created", "last_modified",
                   "district_id", "school_id", "student_id")
CLEVER_OPTIONAL = ("section_id", "excuse_code", "sis_id")
CLEVER_FIELDS = [*CLEVER_REQUIRED, *CLEVER_OPTIONAL]

CSV_COLUMNS = ["SchoolID", "Student_Number", "Att_Date", "Att_Mode_Code", "Period", "Course_Number", "Section_Number",
               "Att_Code", "Presence_Status_CD", "Att_Comment", "Last_Modified"]
IDENTITY = ["SchoolID", "Student_Number", "Att_Date", "Att_Mode_Code", "Period", "Section_Number"]  # one row each
