"""SafetyShieldHook and SafetyShieldUploadOperator against the dataFileUpload stand-in, over HTTP."""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from datetime import timedelta

import pytest
import requests
from airflow.sdk.definitions.retry_policy import RetryAction
from airflow.sdk.exceptions import TaskDeferred
from airflow.triggers.base import TriggerEvent

from clever_attendance.contracts import Delivery, Import, UploadOrder, Window, plain
from clever_attendance.errors import (
    SafetyShieldError,
    SafetyShieldRefusedError,
    SafetyShieldUnavailableError,
)
from clever_attendance.hooks.safety_shield import SafetyShieldHook
from clever_attendance.operators.upload import SafetyShieldUploadOperator, split_csv
from clever_attendance.retry_policy import task_policy
from clever_attendance.triggers.safety_shield import ImportsEnded, Outcome, SafetyShieldImportTrigger
from clever_attendance_sandbox.process import set_faults
from clever_attendance_sandbox.truth import HEADER
from clever_attendance_sandbox.upload_store import imported_rows, write_counts

HEAD = ",".join(HEADER) + "\n"


def fails_at_once(error: BaseException) -> bool:
    """Does the tasks' retry policy fail this error on its first try?"""
    return task_policy().evaluate(error, try_number=1, max_tries=4).action is RetryAction.FAIL


def rows(n: int, day: str = "11/16/2026", start: int = 0) -> str:
    return "".join(f"101,{200000 + i},{day},ATT_ModeDaily,,,,,Present,,2026-11-16T10:00:00Z\n"
                   for i in range(start, start + n))


@pytest.fixture
def conn(sandbox, monkeypatch):
    def make(api_key: str | None = None, **extra) -> str:
        monkeypatch.setenv("AIRFLOW_CONN_SS_TEST", json.dumps({
            "conn_type": "safety_shield", "host": sandbox["upload_url"],
            "password": api_key or sandbox["upload_api_key"],
            "extra": {"poll_seconds": 0.05, "backoff_seconds": 0.05, **extra}}))
        return "ss_test"
    return make


def upload(tmp_path, content: str, conn_id: str, district: str, max_reject_share: float = 0.01,
           **params) -> Delivery:
    path = tmp_path / "attendance.csv"
    path.write_text(content)
    order = UploadOrder(str(path), "springfield", Window.parse("2026-11-16_2026-11-16"), district, conn_id,
                        max_reject_share)
    operator = SafetyShieldUploadOperator(task_id="upload", order=order.to_xcom(), district_slug="springfield")
    return Delivery.from_xcom(operator.execute({"params": params}))


def test_split_respects_both_limits_and_never_splits_a_record():
    body = rows(5) + '101,9,11/16/2026,ATT_ModeDaily,,,,A,Absent,"two\nlines, and ""quotes""",2026-11-16T10:00:00Z\n'
    content = (HEAD + body).encode()
    for max_rows, max_bytes in [(2, 10_000), (100, 400), (1, 10_000)]:
        parts = split_csv(content, max_bytes, max_rows)
        assert all(p.startswith(HEAD.encode()) for p in parts)
        assert all(len(p) <= max_bytes for p in parts)
        assert b"".join(p[len(HEAD):] for p in parts) == body.encode()
    assert len(split_csv(content, 10_000, 2)) == 3


def test_upload_imports_the_rows_and_a_rerun_imports_nothing_twice(sandbox, conn, tmp_path):
    first = upload(tmp_path, HEAD + rows(3), conn(), "op1")
    assert (first.rows, first.imported, first.rejected) == (3, 3, 0)
    assert len(imported_rows(sandbox["db"], "op1")) == 3
    again = upload(tmp_path, HEAD + rows(3), conn(), "op1")
    assert again.uploads[0].upload_id == first.uploads[0].upload_id, "same key and file: same upload"
    assert write_counts(sandbox["db"], "op1") == 3


def test_files_over_the_limits_are_split(sandbox, conn, tmp_path):
    set_faults(sandbox, "upload", max_rows=4)
    result = upload(tmp_path, HEAD + rows(10), conn(max_rows=4), "op2")
    assert [u.rows_received for u in result.uploads] == [4, 4, 2]
    assert len(imported_rows(sandbox["db"], "op2")) == 10


def test_limits_lowered_without_notice_split_the_rest_and_deliver_everything(sandbox, conn, tmp_path, capsys):
    set_faults(sandbox, "upload", max_rows=4)  # the connection still says 200,000 rows
    result = upload(tmp_path, HEAD + rows(10), conn(), "op9")
    logged = capsys.readouterr()
    assert [u.rows_received for u in result.uploads] == [4, 4, 2]
    assert imported_rows(sandbox["db"], "op9") == sorted(tuple(r.split(",")) for r in rows(10).splitlines())
    limits = [line for line in (logged.out + logged.err).splitlines() if "limits are now" in line]
    assert len(limits) == 1, "the new limits are logged once"
    assert ("Clever district springfield (Safety Shield op9): Safety Shield's limits are now 25000000 bytes and 4 "
            "rows (the connection says 25000000 and 200000); the 1 part(s) not yet accepted are split under them"
            ) in limits[0]
    again = upload(tmp_path, HEAD + rows(10), conn(), "op9")
    assert [u.upload_id for u in again.uploads] == [u.upload_id for u in result.uploads], \
        "same content and limits: the same Idempotency-Keys, so nothing is imported twice"
    assert write_counts(sandbox["db"], "op9") == 10


def test_a_file_without_rows_is_not_posted(sandbox, conn, tmp_path):
    result = upload(tmp_path, HEAD, conn(), "op10")
    assert (result.rows, result.uploads) == (0, ())
    posted = requests.get(f"{sandbox['upload_url']}/admin/uploads", timeout=10).json()["uploads"]
    assert [u for u in posted if u["districtId"] == "op10"] == [], "nothing posted to Safety Shield"


def test_throttling_and_server_errors_are_retried(sandbox, conn, tmp_path):
    set_faults(sandbox, "upload", throttle_rate=0.4, error_rate=0.2, retry_after=0, seed=4)
    result = upload(tmp_path, HEAD + rows(5), conn(max_retries=10), "op3")
    assert result.imported == 5


def test_persistent_server_errors_are_transient_for_airflow(sandbox, conn, tmp_path):
    set_faults(sandbox, "upload", error_rate=1.0)
    with pytest.raises(SafetyShieldUnavailableError, match="district springfield .Safety Shield op4. during upload"):
        upload(tmp_path, HEAD + rows(1), conn(max_retries=1), "op4")


def test_a_refused_key_fails_at_once_naming_clever_and_the_district(sandbox, conn, tmp_path):
    with pytest.raises(SafetyShieldError) as failed:
        upload(tmp_path, HEAD + rows(1), conn(api_key="wrong"), "op5")
    assert fails_at_once(failed.value)
    assert str(failed.value) == ("Safety Shield refused the file for Clever attendance of district springfield "
                                 "(Safety Shield op5) during upload: HTTP 401 unauthorized")


def test_a_failed_import_fails_quoting_no_word_of_safety_shields(sandbox, conn, tmp_path):
    """Safety Shield's message about a failed file quotes what it got (here a header line holding a student
    number): the error, and so the notice, says a category, a count and a column, never its free text."""
    with pytest.raises(SafetyShieldError) as failed:
        upload(tmp_path, HEAD.replace("SchoolID", "200417") + rows(1), conn(), "op6")
    assert fails_at_once(failed.value)
    assert str(failed.value).endswith("during import: 1 of 1 files failed: 1 file-level fault(s), first at column "
                                      "(row)")
    assert "200417" not in str(failed.value) and "header" not in str(failed.value)


def test_rejected_rows_over_the_threshold_fail_after_the_upload(sandbox, conn, tmp_path):
    bad = rows(2, day="2026-11-16", start=10)
    with pytest.raises(SafetyShieldError) as failed:
        upload(tmp_path, HEAD + rows(8) + bad, conn(), "op7", max_reject_share=0.1)
    assert fails_at_once(failed.value)
    assert "rejected rows over the threshold" in str(failed.value)
    assert "2 of 10 rows rejected (20.0%, more than 10.0%); columns at fault: {'Att_Date': 2}" in str(failed.value)
    assert len(imported_rows(sandbox["db"], "op7")) == 8, "the good rows are imported all the same"
    assert "2000" not in str(failed.value), "no student number in the message"


def test_dry_run_uploads_nothing(sandbox, conn, tmp_path):
    result = upload(tmp_path, HEAD + rows(2), conn(), "op8", dry_run=True)
    assert result == Delivery(2, dry_run=True)
    assert imported_rows(sandbox["db"], "op8") == []


def test_the_resumed_upload_raises_the_failure_the_trigger_caught_by_its_class():
    """The trigger's event names how the wait ended; the operator raises the error of that outcome again, so that
    the retry policy decides as if the wait had been in the worker."""
    order = UploadOrder("unused.csv", "springfield", Window.parse("2026-11-16_2026-11-16"), "op11", "ss_test", 0.01)
    operator = SafetyShieldUploadOperator(task_id="upload", order=order)
    refused = ImportsEnded.failed(SafetyShieldRefusedError("d", "reading the import status", "HTTP 403"), 1.0)
    with pytest.raises(SafetyShieldRefusedError, match="during reading the import status: HTTP 403") as raised:
        operator.execute_complete({}, refused.to_event().payload)
    assert fails_at_once(raised.value)
    gone = ImportsEnded.failed(SafetyShieldUnavailableError("d", "reading the import status", "HTTP 503"), 1.0)
    with pytest.raises(SafetyShieldUnavailableError):
        operator.execute_complete({}, gone.to_event().payload)
    late = ImportsEnded(Outcome.TIMEOUT, 1.0, pending=("u7",)).to_event().payload
    with pytest.raises(SafetyShieldUnavailableError, match="uploads u7 not finished after 1800s"):
        operator.execute_complete({}, late)
    done = ImportsEnded(Outcome.DONE, 1.0, (Import("u8", "completed", 2, 2, 0, "2026-11-16T12:00:00Z"),))
    assert Delivery.from_xcom(operator.execute_complete({}, done.to_event().payload)).imported == 2


# --- the wait in the triggerer: SafetyShieldImportTrigger, and the upload that defers to it and resumes --------------

SLOW_IMPORT = 3  # seconds: far longer than from a post to the next status request, however loaded the machine


def posted(conn_id: str, district: str, *contents: str) -> list[str]:
    """Upload ids of files posted as the operator posts them (one key per file)."""
    hook = SafetyShieldHook(district, conn_id)
    return [hook.upload(district, content.encode(), f"trigger-test-{district}-{n}") for n, content in
            enumerate(contents)]


def waited(trigger: SafetyShieldImportTrigger) -> ImportsEnded:
    """Run the trigger as the triggerer does, rebuilt from what it stores, to its end: its one event."""
    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    stored = getattr(importlib.import_module(module), name)(**kwargs)

    async def events() -> list[TriggerEvent]:
        return [event async for event in stored.run()]

    (event,) = asyncio.run(events())
    return ImportsEnded.from_event(event.payload)


def test_the_trigger_waits_for_every_import_and_yields_each_in_brief(sandbox, conn):
    set_faults(sandbox, "upload", import_seconds=0.3)
    ids = posted(conn(), "tr1", HEAD + rows(3), HEAD + rows(2, start=3))
    ended = waited(SafetyShieldImportTrigger(ids, "springfield (Safety Shield tr1)", "ss_test",
                                             deadline=time.time() + 60, started=1234.5))
    assert (ended.outcome, ended.started, ended.pending) == (Outcome.DONE, 1234.5, ())
    assert [(r.upload_id, r.status, r.rows_received, r.rows_imported, r.rows_rejected) for r in ended.results] == [
        (ids[0], "completed", 3, 3, 0), (ids[1], "completed", 2, 2, 0)], "in the order posted"
    assert all(r.completed_at for r in ended.results)


def test_a_failed_import_ends_the_wait_and_the_resumed_upload_fails_naming_no_value(sandbox, conn):
    (upload_id,) = posted(conn(), "tr2", HEAD.replace("SchoolID", "200417") + rows(1))
    ended = waited(SafetyShieldImportTrigger([upload_id], "springfield (Safety Shield tr2)", "ss_test",
                                             deadline=time.time() + 60, started=1.0))
    assert ended.outcome is Outcome.DONE
    (failed,) = ended.results
    assert (failed.status, failed.rows_imported) == ("failed", 0)
    assert "200417" not in json.dumps(plain(ended)), "Safety Shield's message quotes the file: not kept"
    order = UploadOrder("unused.csv", "springfield", Window.parse("2026-11-16_2026-11-16"), "tr2", "ss_test", 0.01)
    with pytest.raises(SafetyShieldRefusedError, match="during import: 1 of 1 files failed") as raised:
        SafetyShieldUploadOperator(task_id="upload", order=order).execute_complete({}, ended.to_event().payload)
    assert fails_at_once(raised.value)


def test_an_import_not_done_by_the_deadline_ends_the_wait_naming_it(sandbox, conn):
    set_faults(sandbox, "upload", import_seconds=SLOW_IMPORT)
    ids = posted(conn(), "tr3", HEAD + rows(1))
    ended = waited(SafetyShieldImportTrigger(ids, "springfield (Safety Shield tr3)", "ss_test",
                                             deadline=time.time() - 1, started=1.0))
    assert (ended.outcome, ended.pending, ended.results) == (Outcome.TIMEOUT, tuple(ids), ())


def test_a_refused_or_failing_status_request_ends_the_wait_as_the_hooks_error(sandbox, conn):
    """The trigger catches what the hook raised and names it; the resumed task raises it again by its class."""
    ids = posted(conn(), "tr4", HEAD + rows(1))
    refused = waited(SafetyShieldImportTrigger(ids, "springfield (Safety Shield tr4)",
                                               conn(api_key="wrong"), deadline=time.time() + 60, started=1.0))
    assert (refused.outcome, refused.step, refused.detail) == (Outcome.REFUSED, "reading the import status",
                                                               "HTTP 401 unauthorized")
    set_faults(sandbox, "upload", error_rate=1.0)
    gone = waited(SafetyShieldImportTrigger(ids, "springfield (Safety Shield tr4)", conn(max_retries=1),
                                            deadline=time.time() + 60, started=1.0))
    assert gone.outcome is Outcome.UNAVAILABLE and gone.detail.startswith("HTTP 500")
    assert isinstance(gone.error("springfield"), SafetyShieldUnavailableError)


def test_a_slow_import_defers_the_upload_and_the_resumed_task_returns_the_delivery(sandbox, conn, tmp_path):
    set_faults(sandbox, "upload", import_seconds=SLOW_IMPORT)  # not done at the operator's first poll
    path = tmp_path / "attendance.csv"
    path.write_text(HEAD + rows(3))
    order = UploadOrder(str(path), "springfield", Window.parse("2026-11-16_2026-11-16"), "tr5", conn(), 0.01)
    operator = SafetyShieldUploadOperator(task_id="upload", order=order.to_xcom(), deferrable=True,
                                          import_timeout=60)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"params": {}})
    trigger = deferred.value.trigger
    assert isinstance(trigger, SafetyShieldImportTrigger)
    assert (deferred.value.method_name, deferred.value.timeout) == ("execute_complete", timedelta(seconds=360))
    (upload_id,) = trigger.upload_ids
    assert (trigger.district, trigger.safety_shield_conn_id) == ("springfield (Safety Shield tr5)", "ss_test")
    assert before + 60 <= trigger.deadline <= time.time() + 60 and before <= trigger.started <= time.time()
    assert [u["uploadId"] for u in requests.get(f"{sandbox['upload_url']}/admin/uploads", timeout=10).json()[
        "uploads"] if u["districtId"] == "tr5"] == [upload_id], "posted once, before deferring"

    ended = waited(trigger)
    delivery = Delivery.from_xcom(operator.execute_complete({"params": {}}, ended.to_event().payload))
    assert (delivery.rows, delivery.imported, delivery.rejected, delivery.import_ids) == (3, 3, 0, upload_id)
    assert delivery.seconds >= SLOW_IMPORT, "the step is timed whole, from before the deferral"
    assert len(imported_rows(sandbox["db"], "tr5")) == 3
