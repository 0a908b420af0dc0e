"""The DAGs as Airflow parses them: ids, groups, tasks, pool, retries, schedules, params, import errors."""

from __future__ import annotations

from airflow.dag_processing.dagbag import DagBag

from clever_attendance.pipeline import config
from clever_attendance.sandbox.testing import ROOT, load_dag


def test_both_dags_import_without_errors():
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert set(bag.dags) == {"clever_attendance", "clever_attendance_daily"}


def test_one_group_per_district_with_its_three_tasks():
    slugs = [d.slug for d in config.load().districts]
    for dag_id in ("clever_attendance", "clever_attendance_daily"):
        dag = load_dag(dag_id)
        assert list(dag.task_group.children) == [*slugs, "report"], "groups in slug order, then the report"
        for slug in slugs:
            assert sorted(dag.task_group.children[slug].children) == [f"{slug}.{t}" for t in
                                                                      ("extract", "transform", "upload")]
            extract, upload = dag.get_task(f"{slug}.extract"), dag.get_task(f"{slug}.upload")
            assert extract.pool == "clever_api"
            assert extract.retries == 3 and extract.retry_exponential_backoff == 2.0
            assert upload.execution_timeout and extract.execution_timeout
            assert dag.get_task(f"{slug}.transform").upstream_task_ids == {f"{slug}.extract"}
            assert upload.upstream_task_ids == {f"{slug}.extract", f"{slug}.transform"}
            assert upload.deferrable, "the wait for Safety Shield's import holds no worker slot"
            assert [o.name for o in upload.outlets] == ["clever_attendance_delivered"]
        report = dag.get_task("report")
        assert report.trigger_rule == "all_done" and not report.outlets, "no asset event for a run as such"
        assert report.upstream_task_ids == {f"{s}.upload" for s in slugs}
        assert set(dag.tags) == {"clever", "attendance", "safety-shield"}
        assert dag.owner == "attendance-data-team" and dag.doc_md
        assert set(dag.params) == {"districts", "start_date", "end_date", "dry_run", "force"}


def test_schedules():
    poll, daily = load_dag("clever_attendance"), load_dag("clever_attendance_daily")
    assert type(poll.timetable).__name__ == "CronTriggerTimetable"
    assert poll.timetable.expression == "*/15 6-17 * * 1-5"
    assert type(daily.timetable).__name__ == "CronDataIntervalTimetable"
    assert daily.timetable.expression == "0 2 * * *"
    assert poll.max_active_runs == 1 and not poll.catchup and not daily.catchup


def test_a_broken_districts_file_is_an_import_error_naming_the_field(tmp_path, monkeypatch):
    broken = tmp_path / "districts.yaml"
    broken.write_text((ROOT / "include" / "districts.yaml").read_text().replace(
        "timezone: America/Chicago", "timezone: America/Springfield"))
    monkeypatch.setenv("ATTENDANCE_DISTRICTS_FILE", str(broken))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.dags
    (error,) = bag.import_errors.values()
    assert "district 'shelbyville': field 'timezone': unknown time zone 'America/Springfield'" in error
