"""The one retry policy: every failure class has exactly one decision, and the tasks' policy carries it out."""

from __future__ import annotations

import inspect
import json

import httpx
import pytest
import requests
from airflow.providers.standard.exceptions import HITLTimeoutError
from airflow.sdk.definitions.retry_policy import RetryAction
from airflow.sdk.exceptions import AirflowTaskTimeout, TaskDeferralTimeout

from clever_attendance import errors
from clever_attendance.retry_policy import (
    MAX_429_WAITS,
    RULES,
    UNFORESEEN,
    WAIT_JITTER,
    CleverAnswer,
    CleverCall,
    Decision,
    InHook,
    classify,
    clever_action,
    rule_for,
    safety_shield_answer,
    task_policy,
)

# the failures the pipeline raises: our own classes but the services' bases, and the outside ones we name
BASES = {errors.ServiceError, errors.CleverError, errors.SafetyShieldError}
RAISED = [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
          if cls.__module__ == errors.__name__ and cls not in BASES]
RAISED += [AirflowTaskTimeout, TaskDeferralTimeout, OSError, HITLTimeoutError]


def make(cls: type[BaseException]) -> BaseException:
    if cls is errors.SafetyShieldFileTooLargeError:
        return cls("d1", "upload", "HTTP 413 file_too_large", 1000, 10)
    return cls("d1", "step", "detail") if issubclass(cls, errors.ServiceError) else cls("detail")


@pytest.mark.parametrize("cls", RAISED, ids=lambda c: c.__name__)
def test_every_failure_class_maps_to_exactly_one_decision(cls):
    matching = [rule for rule in RULES if issubclass(cls, rule.failure)]
    assert len(matching) == 1, f"{cls.__name__}: {[r.failure.__name__ for r in matching]}"
    expected = {Decision.RETRY: RetryAction.RETRY, Decision.FAIL: RetryAction.FAIL}[matching[0].decision]
    assert task_policy().evaluate(make(cls), try_number=1, max_tries=4).action is expected


def test_transient_failures_are_retried_and_the_rest_fail_at_once():
    retried = {r.failure.__name__ for r in RULES if r.decision is Decision.RETRY}
    assert retried == {"CleverUnavailableError", "SafetyShieldUnavailableError", "LedgerUnavailableError",
                       "AirflowTaskTimeout", "TaskDeferralTimeout", "OSError"}
    assert {e.__name__ for e in RAISED} - retried == {
        "CleverAuthError", "CleverContractError", "SafetyShieldRefusedError", "SafetyShieldFileTooLargeError",
        "SafetyShieldRowsRejectedError", "RunInputError", "ConfigError", "PipelineBug", "PipelineRejectsError",
        "HITLTimeoutError", "GuardError"}


def test_an_unforeseen_exception_is_our_bug_and_fails_at_once():
    assert rule_for(KeyError("200417")) is UNFORESEEN
    assert task_policy().evaluate(KeyError("200417"), try_number=1, max_tries=4).action is RetryAction.FAIL
    category, _, quoted = classify(KeyError("200417"))
    assert category == "our bug" and quoted == "KeyError (see the task log)", "an unknown error is never quoted"


def test_the_notice_names_our_bugs_and_bad_input_by_what_they_are():
    assert classify(errors.PipelineBug("counts do not balance"))[:1] == ("our bug",)
    assert classify(errors.PipelineBug("counts do not balance"))[2] == "counts do not balance"
    assert classify(errors.RunInputError("field 'end_date': 2026-11-10 is before start_date 2026-11-19")) == (
        "the run's input", "Trigger the run again with the field the error names corrected.",
        "field 'end_date': 2026-11-10 is before start_date 2026-11-19")
    assert classify(OSError(28, "No space left on device"))[0::2] == ("staging storage unavailable",
                                                                    "OSError (see the task log)")


def test_what_the_safety_shield_hook_retries_itself():
    assert {safety_shield_answer(s) for s in (429, 500, 502, 503, 504)} == {InHook.WAIT}
    assert safety_shield_answer(413) is InHook.SPLIT
    assert {safety_shield_answer(s) for s in (400, 401, 403, 409)} == {InHook.RAISE}


# --- what both Clever clients do with an answer: clever_action, without a server ----------------------------------

NOW = 1_700_000_000.0
CALL = CleverCall("d1", "GET /v3.1/districts/d1", max_retries=2, backoff=1.0, can_refresh=True)


def answer(status: int, body: object = None, headers: dict | None = None) -> CleverAnswer:
    """Clever's answer with `body` as its JSON (bytes: as sent)."""
    return CleverAnswer.read(status, headers or {}, body if isinstance(body, bytes) else json.dumps(body).encode())


def raised(action, error: type[errors.CleverError], detail: str) -> None:
    assert action.do is InHook.RAISE and type(action.error) is error
    assert str(action.error) == str(error("d1", "GET /v3.1/districts/d1", detail))


def test_a_200_with_a_json_object_is_read():
    action = clever_action(CALL, answer(200, {"data": {"id": "d1"}}), NOW)
    assert (action.do, action.body, action.call) == (InHook.READ, {"data": {"id": "d1"}}, CALL)


@pytest.mark.parametrize("body", [[{"data": {}}], "d1", None, 3])
def test_a_200_with_json_that_is_not_an_object_breaks_the_contract_at_once(body):
    raised(clever_action(CALL, answer(200, body), NOW), errors.CleverContractError, "the answer is not a JSON object")


@pytest.mark.parametrize("failure, why, spent, detail", [
    (requests.ConnectionError(), "ConnectionError", errors.CleverUnavailableError, "ConnectionError, 3 attempts"),
    (requests.exceptions.ChunkedEncodingError(), "ChunkedEncodingError", errors.CleverUnavailableError,
     "ChunkedEncodingError, 3 attempts"),
    (httpx.ReadTimeout("timed out"), "ReadTimeout", errors.CleverUnavailableError, "ReadTimeout, 3 attempts"),
    *((answer(status, {"message": "down"}), f"HTTP {status}", errors.CleverUnavailableError,
       f"HTTP {status}, 3 attempts") for status in (500, 502, 503, 504)),
    (answer(200, b'{"data": {"id": "d1", "last_att'), "invalid JSON", errors.CleverContractError,
     "the answer is not JSON"),
    (answer(200, b"\xff\xfe{}"), "invalid JSON", errors.CleverContractError, "the answer is not JSON"),
], ids=lambda v: v if isinstance(v, str) and " " not in v else None)
def test_faults_back_off_within_max_retries_then_raise(failure, why, spent, detail):
    call = CALL
    for retry in range(CALL.max_retries):
        action = clever_action(call, failure, NOW)
        assert (action.do, action.why, action.call.failures) == (InHook.BACKOFF, why, retry + 1)
        assert 0.5 * 2**retry <= action.seconds <= 2**retry, "exponential from backoff_seconds, with jitter"
        call = action.call
    raised(clever_action(call, failure, NOW), spent, detail)


def test_network_faults_5xx_and_unreadable_200s_spend_one_budget():
    call = clever_action(CALL, httpx.ConnectError("refused"), NOW).call
    call = clever_action(call, answer(503), NOW).call
    raised(clever_action(call, answer(200, b"{"), NOW), errors.CleverContractError, "the answer is not JSON")


def test_a_429_waits_as_clever_says_without_spending_the_failure_budget():
    action = clever_action(CALL, answer(429, headers={"Retry-After": "7"}), NOW)
    assert action.do is InHook.WAIT and 7 <= action.seconds <= 7 + WAIT_JITTER
    assert (action.call.waits, action.call.failures) == (1, 0)
    reset = {"X-RateLimit-Remaining": "0, 90", "X-RateLimit-Reset": f"{NOW + 20:.0f}, {NOW + 60:.0f}"}
    assert 20 <= clever_action(CALL, answer(429, headers=reset), NOW).seconds <= 20 + WAIT_JITTER
    past = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": f"{NOW - 5:.0f}"}
    assert clever_action(CALL, answer(429, headers=past), NOW).seconds <= WAIT_JITTER, "a reset gone: only the jitter"
    assert 1 <= clever_action(CALL, answer(429), NOW).seconds <= 1 + WAIT_JITTER, "no header: a second"
    call = CALL
    for _ in range(MAX_429_WAITS):
        call = clever_action(call, answer(429), NOW).call
    raised(clever_action(call, answer(429), NOW), errors.CleverUnavailableError,
           f"still rate-limited after {MAX_429_WAITS} waits")


def test_a_401_looks_the_token_up_again_once_and_only_with_app_credentials():
    action = clever_action(CALL, answer(401, {"message": "invalid or expired token"}), NOW)
    assert action.do is InHook.REFRESH_TOKEN and action.call.refreshed
    raised(clever_action(action.call, answer(401), NOW), errors.CleverAuthError, "HTTP 401: token refused")
    held = CleverCall("d1", "GET /v3.1/districts/d1", max_retries=2, backoff=1.0, can_refresh=False)
    raised(clever_action(held, answer(401), NOW), errors.CleverAuthError, "HTTP 401: token refused")


def test_a_403_is_refused_credentials_at_once():
    raised(clever_action(CALL, answer(403, {"message": "forbidden"}), NOW), errors.CleverAuthError,
           "HTTP 403: token refused")


def test_a_413_asks_for_a_smaller_page_while_the_page_can_shrink():
    page = CleverCall("d1", "GET /v3.1/users", max_retries=2, backoff=1.0, can_refresh=True, limit=10_000)
    assert clever_action(page, answer(413), NOW).do is InHook.SMALLER_PAGE
    one = CleverCall("d1", "GET /v3.1/districts/d1", max_retries=2, backoff=1.0, can_refresh=True, limit=1)
    for call in (one, CALL):  # a page of one item, or a request that reads no list
        raised(clever_action(call, answer(413, {"message": "limit too large"}), NOW), errors.CleverContractError,
               "HTTP 413: limit too large")


@pytest.mark.parametrize("status", [400, 404, 501, 201, 204, 302, 418])
def test_any_other_status_breaks_the_contract_at_once_quoting_clever(status):
    raised(clever_action(CALL, answer(status, {"message": "district not found"}), NOW), errors.CleverContractError,
           f"HTTP {status}: district not found")


def test_clevers_message_is_quoted_short_and_printable_and_html_is_named_not_quoted():
    raised(clever_action(CALL, answer(404, {"message": "no\r\nX: \ud800\x1b" + "x" * 300}), NOW),
           errors.CleverContractError, "HTTP 404: no??X: ??" + "x" * 191)
    html = CleverAnswer.read(400, {"content-type": "text/html"}, b"<html>wrong token type</html>")
    raised(clever_action(CALL, html, NOW), errors.CleverContractError, "HTTP 400: non-JSON body (HTML)")
    raised(clever_action(CALL, answer(404, ["x"]), NOW), errors.CleverContractError, "HTTP 404: ")


def test_the_runbook_lists_every_notice_category_with_its_advice():
    from clever_attendance.retry_policy import RULES
    from clever_attendance_sandbox.testing import ROOT

    runbook = (ROOT / "docs" / "operations.md").read_text()
    for rule in RULES:
        assert f"| {rule.category} | " in runbook and rule.advice in runbook, rule.category
