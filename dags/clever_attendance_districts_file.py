"""The districts file's mistakes as an Airflow import error: no DAG is defined here.

clever_attendance.py leaves a district entry with a mistake out of every DAG, and the others run; while any is
left out this file fails to import, so the UI's import errors name each one, with its field.
"""

from clever_attendance.errors import ConfigError
from clever_attendance.pipeline.config import load

problems = load().left_out()
if problems:
    raise ConfigError(problems)
