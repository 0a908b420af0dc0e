"""Failure notices through a real SMTP server: one message, the right category, no student data."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime

import pytest
import requests

from clever_attendance.alerts import latency_pages
from clever_attendance.errors import CleverAuthError, CleverUnavailableError, SafetyShieldRowsRejectedError
from clever_attendance.pipeline import config
from clever_attendance.retry_policy import classify
from clever_attendance_sandbox.testing import ROOT, load_dag, report_rows
from clever_attendance_sandbox.truth import configured_truth


def test_categories_follow_the_cause():
    wrapped = RuntimeError("task failed")
    wrapped.__cause__ = CleverAuthError("d1", "GET /v3.1/districts/d1", "HTTP 401: token refused")
    assert classify(wrapped)[0] == "Clever credentials"
    assert classify(CleverUnavailableError("d1", "step", "HTTP 503, 7 attempts"))[0] == \
        "Clever unavailable or rate-limited"
    assert classify(SafetyShieldRowsRejectedError("s", "import", "3 of 9"))[0] == \
        "Safety Shield rejected rows over the threshold"
    category, _, quoted = classify(KeyError("200417"))
    assert category == "our bug" and quoted == "KeyError (see the task log)", "an unknown error is never quoted"


@pytest.mark.timeout(300)
def test_a_failing_district_sends_one_notice_naming_clever_the_district_and_the_category(
        sandbox, districts, pipeline_env, districts_file, smtp, slack, monkeypatch):
    text = districts_file.read_text().replace(
        "    timezone: America/Chicago\n",
        "    timezone: America/Chicago\n    clever_conn_id: clever_rotated_away\n").replace(
        "alert_emails: []", "alert_emails: [attendance-team@district.test]")
    districts_file.write_text(text)
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp.connection)
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ATTENDANCE", slack.connection)
    monkeypatch.setenv("AIRFLOW_CONN_CLEVER_ROTATED_AWAY", json.dumps({
        "conn_type": "http", "host": sandbox["clever_url"], "login": sandbox["clever_client_id"],
        "password": "an-old-secret", "extra": {"oauth_url": sandbox["clever_url"]}}))
    smtp.messages.clear()
    dag_run = load_dag("clever_attendance_daily").test(logical_date=datetime(2026, 11, 18, 7, tzinfo=UTC))
    assert dag_run.state == "failed"
    ((subject, body),) = smtp.texts()
    assert subject == "[Clever attendance] shelbyville: extract failed: Clever credentials"
    assert "Clever attendance of Shelbyville Unified (slug shelbyville, Clever district 84f02b8aba713f7e89be22b5, " \
           "Safety Shield 1002) did not reach Safety Shield." in body
    assert "Error: Clever credentials refused for district 84f02b8aba713f7e89be22b5 during looking up the " \
           "district token: HTTP 401: app credentials refused" in body
    assert "What to do next: Check the Clever connection" in body
    assert "/dags/clever_attendance_daily/runs/" in body and "/tasks/district.sync/mapped/0" in body
    assert smtp.messages[0]["To"] == "attendance-team@district.test"
    ((path, post),) = slack.posts
    assert path == "/services/T0000/B0000/not-a-secret"
    text = body.removeprefix("<pre>").removesuffix("</pre>")
    assert post["text"] == f"*{subject}*\n```{text}```", "Slack gets the same notice as the e-mail"
    students = districts["shelbyville"].students
    for secret in {s["roles"]["student"]["sis_id"] for s in students} - {""} | {s["name"]["last"] for s in students}:
        assert secret not in body
    smtp.messages.clear()
    slack.posts.clear()
    dry = load_dag("clever_attendance_daily").test(logical_date=datetime(2026, 11, 18, 7, tzinfo=UTC),
                                                   run_conf={"dry_run": True})
    assert dry.state == "failed"
    assert (smtp.texts(), slack.posts) == ([], []), "a dry run's failure notice goes to the task log only"


@pytest.mark.timeout(300)
def test_a_broken_district_is_sent_as_a_notice_by_the_daily_run_and_the_others_deliver(
        sandbox, pipeline_env, districts_file, smtp, monkeypatch):
    districts_file.write_text(districts_file.read_text().replace(
        "timezone: America/Chicago", "timezone: America/Springfield").replace(
        "alert_emails: []", "alert_emails: [attendance-team@district.test]"))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp.connection)
    smtp.messages.clear()
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))  # the other DAG file's import error names it (test_dags)
    dag_run = bag.dags["clever_attendance_daily"].test(logical_date=datetime(2026, 11, 18, 7, tzinfo=UTC))
    assert dag_run.state == "success", "springfield runs"
    ((subject, body),) = smtp.texts()
    assert subject == "[Clever attendance] districts file: 1 district(s) left out"
    assert f"- {districts_file}: district 'shelbyville': field 'timezone': unknown time zone " \
           "'America/Springfield'" in body
    assert "No attendance of these districts reaches Safety Shield until each field named is fixed" in body
    assert smtp.messages[0]["To"] == "attendance-team@district.test"


@pytest.mark.timeout(300)
def test_rejects_over_the_pipelines_own_threshold_fail_the_district_before_its_upload_with_a_notice(
        sandbox, districts, pipeline_env, districts_file, smtp, monkeypatch):
    chicago = "    timezone: America/Chicago\n"
    districts_file.write_text(districts_file.read_text().replace(
        chicago, chicago + "    max_pipeline_reject_share: 0.001\n").replace(
        "alert_emails: []", "alert_emails: [attendance-team@district.test]"))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp.connection)
    smtp.messages.clear()
    posted = requests.get(f"{sandbox['upload_url']}/admin/uploads", timeout=10).json()["uploads"]
    dag_run = load_dag("clever_attendance_daily").test(logical_date=datetime(2026, 11, 18, 7, tzinfo=UTC))
    assert dag_run.state == "failed"
    rows = report_rows(dag_run)
    assert (rows["shelbyville"]["status"], rows["springfield"]["status"]) == ("failed at transform", "uploaded")
    ((subject, body),) = smtp.texts()
    assert subject == "[Clever attendance] shelbyville: transform failed: the pipeline rejected records over the " \
                      "threshold"
    shelbyville, day = config.load().district("shelbyville"), date(2026, 11, 18)
    truth = configured_truth(districts["shelbyville"], shelbyville, day, day, datetime.fromisoformat(sandbox["now"]))
    reasons = Counter(r["reason"] for r in truth.rejects)
    assert f"Error: Clever district shelbyville: the pipeline rejected {len(truth.rejects)} of {truth.read} records " \
           f"({len(truth.rejects) / truth.read:.1%}, more than max_pipeline_reject_share 0.1%): " \
           f"{', '.join(f'{r} {n}' for r, n in sorted(reasons.items()))}; nothing was uploaded" in body
    after = requests.get(f"{sandbox['upload_url']}/admin/uploads", timeout=10).json()["uploads"]
    assert [u for u in after if u["districtId"] == shelbyville.safety_shield_district_id] == [
        u for u in posted if u["districtId"] == shelbyville.safety_shield_district_id], "nothing of it posted"
    assert list(pipeline_env.glob("clever_attendance_daily/shelbyville/*/*/raw_*.csv")), "its staged files stay"
    assert not list(pipeline_env.rglob("_*.json")), "a permanent failure keeps no step's result: a clear reads anew"


@pytest.mark.parametrize("dag_id, run_type, pages", [
    ("clever_attendance", "scheduled", True),
    ("clever_attendance", "manual", False),  # a window override or a dry run: a person re-syncing, not an incident
    ("clever_attendance", "backfill", False),
    ("clever_attendance_daily", "scheduled", False),  # a date synced the night after is late by design
    ("clever_attendance_events", "asset_triggered", True),  # the watcher's promise of minutes
    ("clever_attendance_events", "manual", False),
])
def test_only_a_scheduled_polling_run_or_a_watchers_run_pages_for_latency(dag_id, run_type, pages):
    assert latency_pages(dag_id, run_type) is pages
