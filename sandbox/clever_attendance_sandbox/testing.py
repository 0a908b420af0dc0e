"""What the tests share beyond their fixtures: the sandbox's frozen clock, variants of the shipped districts
file, a DAG as Airflow loads it, a run through Airflow's own runner and its report."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from clever_attendance_sandbox.wiring import ROOT

# Friday 2026-11-20, after the district's last upload of the day
NOW = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
WEEK = (date(2026, 11, 16), date(2026, 11, 20))


def districts_variant(path: Path, **changes: str) -> Path:
    """The shipped districts file with some defaults changed (key=new value), written to `path`."""
    text = (ROOT / "include" / "districts.yaml").read_text()
    for key, value in changes.items():
        old = next(line for line in text.splitlines() if line.startswith(f"  {key}:"))
        text = text.replace(old, f"  {key}: {value}")
    path.write_text(text)
    return path


def copies_file(path: Path, count: int, preset: str = "tiny", **defaults: object) -> Path:
    """A districts file of `count` copies of a sandbox preset (`python -m clever_attendance_sandbox serve
    --districts tiny*N`), with the shipped defaults (some changed: key=new value), written to `path`."""
    import yaml

    from clever_attendance_sandbox.generator import District, presets

    shipped = yaml.safe_load((ROOT / "include" / "districts.yaml").read_text())
    districts = [{"slug": spec.slug, "name": spec.name, "clever_district_id": District(spec).id,
                  "safety_shield_district_id": str(5000 + n)}
                 for n, spec in enumerate(presets([f"{preset}*{count}"]), 1)]
    path.write_text(yaml.safe_dump({"defaults": {**shipped["defaults"], **defaults}, "districts": districts},
                                   sort_keys=False))
    return path


def load_dag(dag_id: str):
    """A DAG as Airflow loads it: from the dags folder, through a DagBag."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def run(dag_id: str, logical_date: datetime, **conf):
    """A run of the DAG through Airflow's own runner (dag.test), with `conf` as its form."""
    return load_dag(dag_id).test(logical_date=logical_date, run_conf=conf or None)


def report_rows(dag_run) -> dict[str, dict]:
    """The report task's rows, by district, as the run left them in XCom."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalar(select(XComModel.value).where(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id, XComModel.task_id == "report",
            XComModel.key == "return_value"))
    return {row["district"]: row for row in (json.loads(value) if isinstance(value, str) else value)}
