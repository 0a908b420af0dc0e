"""Clever attendance into Safety Shield: the Airflow DAGs, polling, daily (backfillable) and event-driven.

Thin on purpose: the districts come from include/districts.yaml (or $ATTENDANCE_DISTRICTS_FILE),
the DAGs from the installed package's factory (clever_attendance.pipeline.factory). A mistake in the
file's defaults is an import error here, naming the field; a district entry with one is left out, the others
run, and clever_attendance_districts_file.py names it. (Airflow's safe mode
parses only files that say "airflow" and "dag": this docstring does.)
"""

from clever_attendance.pipeline.config import load
from clever_attendance.pipeline.factory import build

# each DAG at module level under its id: clever_attendance, clever_attendance_daily, clever_attendance_events
globals().update((dag.dag_id, dag) for dag in build(load()))
