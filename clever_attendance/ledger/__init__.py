"""The attendance ledger: what the pipeline did, per run, district and attendance date, in a database of its own.

Written by the report task (`ledger.record`), read by the Attendance board (`clever_attendance.board`) and,
per school and date, by anything that compares a day with a school's history.
"""
