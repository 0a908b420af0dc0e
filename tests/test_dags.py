"""The DAGs as Airflow parses them: ids, groups, tasks, pool, retries, schedules, params, import errors."""

from __future__ import annotations

from airflow.dag_processing.dagbag import DagBag

from clever_attendance.pipeline import config
from clever_attendance_sandbox.testing import ROOT, load_dag

DAG_IDS = ("clever_attendance", "clever_attendance_daily", "clever_attendance_events")


def test_the_dags_import_without_errors():
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert set(bag.dags) == {*DAG_IDS, "clever_attendance_review"}


def test_a_check_then_one_mapped_district_group_then_the_report():
    from airflow.sdk.definitions.taskgroup import MappedTaskGroup

    for dag_id in DAG_IDS:
        dag = load_dag(dag_id)
        assert list(dag.task_group.children) == ["check", "district", "report"]
        group = dag.task_group.children["district"]
        assert isinstance(group, MappedTaskGroup), "one group, one instance per district with something new"
        assert sorted(group.children) == ["district.sync"], "one task a district: extract, transform, upload"
        check, report, sync = dag.get_task("check"), dag.get_task("report"), dag.get_task("district.sync")
        assert sync.upstream_task_ids == {"check"}
        assert sync.pool == "clever_api" and check.pool != "clever_api", "one check for all, outside the pool"
        assert sync.retries == 3 and sync.retry_exponential_backoff == 2.0
        assert sync.execution_timeout and check.execution_timeout
        assert sync.deferrable, "the wait for Safety Shield's import holds no worker slot"
        assert [o.name for o in sync.outlets] == ["clever_attendance_delivered"]
        assert sync.map_index_template == "{{ task.district_slug }}", "each instance is named by its district"
        assert report.trigger_rule == "all_done" and not report.outlets, "no asset event for a run as such"
        assert report.upstream_task_ids == {"check", "district.sync"}
        assert set(dag.tags) == {"clever", "attendance", "safety-shield"}
        assert dag.owner == "attendance-data-team" and dag.doc_md
        assert set(dag.params) == {"districts", "start_date", "end_date", "dry_run", "force",
                                   *(["reconcile"] if dag_id == "clever_attendance_daily" else [])}


def test_the_review_dag_asks_a_person_then_uploads_and_records():
    from airflow.providers.standard.operators.hitl import HITLOperator

    review = load_dag("clever_attendance_review")
    assert type(review.timetable).__name__ == "NullTimetable", "started by the guard only"
    assert review.is_paused_upon_creation is False, "a hold must reach a person where new DAGs start paused"
    decide, deliver, upload, record = (review.get_task(t) for t in ("decide", "deliver", "upload", "record"))
    assert isinstance(decide, HITLOperator) and decide.options == [
        "Approve", "Reject", "Upload all but the suspicious schools"]
    assert decide.retries == 0 and [type(n).__name__ for n in decide.notifiers] == ["HoldNotice"]
    assert deliver.upstream_task_ids == {"decide"} and upload.upstream_task_ids == {"deliver"}
    assert record.upstream_task_ids == {"upload"} and record.trigger_rule == "all_done"
    assert review.deadline is None, "a person's decision has its own timeout, not the run's deadline"


def test_schedules():
    poll, daily, events = (load_dag(dag_id) for dag_id in DAG_IDS)
    assert type(poll.timetable).__name__ == "CronTriggerTimetable"
    assert poll.timetable.expression == "*/15 6-17 * * 1-5"
    assert type(daily.timetable).__name__ == "CronDataIntervalTimetable"
    assert daily.timetable.expression == "0 2 * * *"
    assert poll.max_active_runs == events.max_active_runs == 3, "a slow or retrying district holds its run alone"
    assert not poll.catchup and not daily.catchup
    (asset,) = events.timetable.asset_condition.objects
    assert (asset.name, asset.uri) == ("clever_last_attendance_sync", "clever://attendance/last_attendance_sync")
    (watcher,) = asset.watchers
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "clever_attendance.triggers.clever.CleverSyncTrigger"
    assert kwargs == {"interval": 60.0, "districts": [
        [d.slug, d.clever_district_id, d.clever_conn_id] for d in config.load().districts]}


def test_without_watched_districts_there_is_no_event_driven_dag(tmp_path, monkeypatch):
    from clever_attendance_sandbox.testing import districts_variant

    monkeypatch.setenv("ATTENDANCE_DISTRICTS_FILE", str(districts_variant(
        tmp_path / "districts.yaml", watch_interval_seconds="0")))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert set(bag.dags) == {"clever_attendance", "clever_attendance_daily", "clever_attendance_review"}


def test_a_broken_district_is_an_import_error_naming_it_while_the_others_run(tmp_path, monkeypatch):
    broken = tmp_path / "districts.yaml"
    broken.write_text((ROOT / "include" / "districts.yaml").read_text().replace(
        "timezone: America/Chicago", "timezone: America/Springfield"))
    monkeypatch.setenv("ATTENDANCE_DISTRICTS_FILE", str(broken))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert set(bag.dags) == {*DAG_IDS, "clever_attendance_review"}
    assert bag.dags["clever_attendance"].params.get_param("districts").schema["items"]["enum"] == ["springfield"]
    (path, error), = bag.import_errors.items()
    assert path.endswith("clever_attendance_districts_file.py")
    assert f"1 district(s) of {broken} left out of every DAG until fixed (the others run):" in error
    assert "district 'shelbyville': field 'timezone': unknown time zone 'America/Springfield'" in error


def test_broken_defaults_are_an_import_error_naming_the_field(tmp_path, monkeypatch):
    broken = tmp_path / "districts.yaml"
    broken.write_text((ROOT / "include" / "districts.yaml").read_text().replace(
        "  timezone: America/New_York", "  timezone: America/Springfield", 1))
    monkeypatch.setenv("ATTENDANCE_DISTRICTS_FILE", str(broken))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.dags, "nothing can run on defaults that are wrong"
    assert all("defaults: field 'timezone': unknown time zone 'America/Springfield'" in error
               for error in bag.import_errors.values())
