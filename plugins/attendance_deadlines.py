"""The Deadline Alerts' reference (clever_attendance.alerts.deadline.RunQueuedAt), for the scheduler to evaluate."""

from airflow.plugins_manager import AirflowPlugin

from clever_attendance.alerts.deadline import RunQueuedAt


class AttendanceDeadlinesPlugin(AirflowPlugin):
    name = "attendance_deadlines"
    deadline_references = [RunQueuedAt]
