"""Celery's configuration for the project's workers: Airflow's own, and the task modules imported once.

A Celery worker imports `imports` in its main process before it forks its pool, so every task process starts
with them (`settings.TASK_PRELOAD`). Set `[celery] celery_config_options` to `settings.CELERY_CONFIG_OPTIONS`.
"""

from __future__ import annotations

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

from clever_attendance.settings import TASK_PRELOAD

CELERY_CONFIG = {**DEFAULT_CELERY_CONFIG, "imports": TASK_PRELOAD}
