"""The Attendance board in the Airflow UI: Browse → Clever attendance, and an Attendance tab on every run."""

from airflow.plugins_manager import AirflowPlugin

from clever_attendance.board import EXTERNAL_VIEWS, FASTAPI_APP


class AttendanceBoardPlugin(AirflowPlugin):
    name = "attendance_board"
    fastapi_apps = [FASTAPI_APP]
    external_views = EXTERNAL_VIEWS
