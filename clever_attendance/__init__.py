"""Clever attendance into Safety Shield on Airflow 3: the provider (hooks, operators, triggers), the pipeline, the
ledger and the board. The sandbox is a distribution of its own (clever_attendance_sandbox, in sandbox/)."""
