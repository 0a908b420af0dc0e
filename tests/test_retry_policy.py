"""The one retry policy: every failure class has exactly one decision, and the tasks' policy carries it out."""

from __future__ import annotations

import inspect

import pytest
from airflow.providers.standard.exceptions import HITLTimeoutError
from airflow.sdk.definitions.retry_policy import RetryAction
from airflow.sdk.exceptions import AirflowTaskTimeout, TaskDeferralTimeout

from clever_attendance import errors
from clever_attendance.retry_policy import (
    RULES,
    UNFORESEEN,
    Decision,
    InHook,
    classify,
    clever_answer,
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


def test_what_the_hooks_retry_themselves():
    assert clever_answer(429) is InHook.WAIT
    assert clever_answer(401) is InHook.REFRESH_TOKEN
    assert clever_answer(413) is InHook.SMALLER_PAGE
    assert {clever_answer(s) for s in (500, 502, 503, 504)} == {InHook.BACKOFF}
    assert {clever_answer(s) for s in (400, 403, 404, 501)} == {InHook.RAISE}
    assert {safety_shield_answer(s) for s in (429, 500, 502, 503, 504)} == {InHook.WAIT}
    assert safety_shield_answer(413) is InHook.SPLIT
    assert {safety_shield_answer(s) for s in (400, 401, 403, 409)} == {InHook.RAISE}


def test_the_runbook_lists_every_notice_category_with_its_advice():
    from clever_attendance.retry_policy import RULES
    from clever_attendance.sandbox.testing import ROOT

    runbook = (ROOT / "docs" / "operations.md").read_text()
    for rule in RULES:
        assert f"| {rule.category} | " in runbook and rule.advice in runbook, rule.category
