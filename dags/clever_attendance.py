"""Clever attendance into Safety Shield: the Airflow DAGs, polling and daily (backfillable).

Thin on purpose: the districts come from include/districts.yaml (or $ATTENDANCE_DISTRICTS_FILE),
the DAGs from include/attendance/dag_factory.py. A mistake in the districts file is an import
error here, naming the district and the field. (Airflow's safe mode parses only files that say
"airflow" and "dag": this docstring does.)
"""

from include.attendance.config import load
from include.attendance.dag_factory import build

clever_attendance, clever_attendance_daily = build(load())
