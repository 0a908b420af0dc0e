"""Clever attendance into Safety Shield on Airflow 3: the provider (hooks, operator), the pipeline, the sandbox."""
