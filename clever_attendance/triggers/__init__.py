"""Triggers that wait in Airflow's triggerer instead of a worker slot: SafetyShieldImportTrigger."""
