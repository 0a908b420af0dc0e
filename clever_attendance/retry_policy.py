"""The one retry policy: for every failure, who retries it (a hook, Airflow, or nobody) and what the notice calls it.

Three layers can retry, and each asks this module instead of deciding for itself:

1. **Inside a hook**, one HTTP call at a time: `clever_answer` and `safety_shield_answer` say what a hook does
   with a status (wait for the rate limit, back off, look the token up again, ask for a smaller page); a
   network fault (`NETWORK_ERRORS`) backs off. When the hook's own bound runs out it raises an error of
   `clever_attendance.errors`.
2. **Airflow's task retries** (`task_retries`, exponential backoff from `retry_delay_seconds`): every task
   carries `task_policy()`, Airflow 3.3's `ExceptionRetryPolicy` built from `RULES`, so only failures marked
   `RETRY` there are tried again.
3. **Nobody**: everything else fails the task on its first try, `AirflowFailException`'s outcome, including
   any exception `RULES` does not name: an unforeseen exception is our bug, and retrying a bug repeats it.

`RULES` also gives each failure's category and advice for the failure notice (`classify`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

import requests
from airflow.providers.standard.exceptions import HITLTimeoutError
from airflow.sdk.exceptions import AirflowTaskTimeout, TaskDeferralTimeout

from clever_attendance.errors import (
    CleverAuthError,
    CleverContractError,
    CleverUnavailableError,
    ConfigError,
    GuardError,
    LedgerUnavailableError,
    PipelineBug,
    PipelineRejectsError,
    RunInputError,
    SafetyShieldRefusedError,
    SafetyShieldRowsRejectedError,
    SafetyShieldUnavailableError,
)

# --- 1. inside a hook -------------------------------------------------------------------------------------------


class InHook(Enum):
    """What a hook does with one answer of a service."""

    BACKOFF = "retried in the hook: exponential backoff with jitter, up to the connection's max_retries"
    WAIT = "retried in the hook after the service's own wait (rate-limit reset or Retry-After)"
    REFRESH_TOKEN = "retried in the hook once, with the district token looked up again"
    SMALLER_PAGE = "retried in the hook with half the page size"
    SPLIT = "raised with the limits the answer states: the upload operator splits the file under them and goes on"
    RAISE = "not retried in the hook: it raises, and layer 2 decides"


NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
"""Connection refused or cut, timeouts, a body cut short: both hooks back off (InHook.BACKOFF)."""

MAX_429_WAITS = 30
"""A Clever rate-limit storm longer than this many waits is an outage, not a limit: CleverUnavailableError."""

# Clever's documented API: 429 waits for the reset; 500-504 back off; 401 looks the token up again once;
# 413 (page too large) lowers `limit`; 400, 403, 404, 501 and anything else raise.
_CLEVER = {429: InHook.WAIT, 401: InHook.REFRESH_TOKEN, 413: InHook.SMALLER_PAGE,
           **dict.fromkeys((500, 502, 503, 504), InHook.BACKOFF)}


def clever_answer(status: int) -> InHook:
    """What CleverHook does with an answer of this status (200 is read, not asked about)."""
    return _CLEVER.get(status, InHook.RAISE)


def safety_shield_answer(status: int) -> InHook:
    """What SafetyShieldHook does with an answer of this status: 429 and every 5xx are retried (after
    Retry-After when the answer gives one, else with backoff); 413 states the limits to split under
    (Safety Shield's documented API: the uploader splits so that it never stops a delivery); other 4xx raise
    SafetyShieldRefusedError."""
    if status == 429 or status >= 500:
        return InHook.WAIT
    if status == 413:
        return InHook.SPLIT
    return InHook.RAISE


def backoff_seconds(base: float, retry: int) -> float:
    """Exponential from `base`, at most a minute, with jitter so that parallel callers spread out."""
    return min(60.0, base * 2**retry) * random.uniform(0.5, 1.0)


# --- 2 and 3. a task's failure ----------------------------------------------------------------------------------


class Decision(Enum):
    RETRY = "retried by Airflow (task retries)"
    FAIL = "fails the task at once"


@dataclass(frozen=True)
class Rule:
    """One failure class: Airflow's decision, and how the failure notice names it."""

    failure: type[BaseException]
    decision: Decision
    category: str
    advice: str
    quoted: bool = True  # the notice quotes the message: only our own exceptions, written to hold no student data


BUG_ADVICE = ("A defect in the pipeline, not in Clever, Safety Shield or the run's input: read the task log and "
              "open an issue with it. Clearing the task will fail the same way.")

RULES: tuple[Rule, ...] = (
    Rule(CleverAuthError, Decision.FAIL, "Clever credentials",
         "Check the Clever connection (client id and secret, or district token) and that the app is still "
         "shared with the district in Clever's dashboard; then clear the district's task group."),
    Rule(CleverUnavailableError, Decision.RETRY, "Clever unavailable or rate-limited",
         "Nothing to fix on our side if it passes: the task was retried. If it persists, check Clever's status "
         "page and whether another app spends the district's rate limit; then clear the district's task group."),
    Rule(CleverContractError, Decision.FAIL, "Clever contract changed",
         "Clever answered outside its documented contract (the attendance API is a preview). Compare the error "
         "with Clever's attendance API documentation and adapt CleverHook; a configured school missing from "
         "Clever lands here too."),
    Rule(SafetyShieldRefusedError, Decision.FAIL, "Safety Shield refused the file",
         "Check the Safety Shield connection (API key, base URL) and the district's Safety Shield id; a failed "
         "import names its file-level fault. Then clear the district's upload task."),
    Rule(SafetyShieldRowsRejectedError, Decision.FAIL, "Safety Shield rejected rows over the threshold",
         "The good rows were imported. Read the columns at fault in the error and rejects.csv in staging, fix "
         "the district's configuration (code map, student number field), then clear the district's task group."),
    Rule(PipelineRejectsError, Decision.FAIL, "the pipeline rejected records over the threshold",
         "Nothing of the district's window was uploaded. Read the reasons in the error and the district's "
         "rejects.csv in staging (a failed run's files stay staging_retention_days), fix the cause (roster, "
         "student_number_field, code map) or raise max_pipeline_reject_share, then clear the district's task group."),
    Rule(SafetyShieldUnavailableError, Decision.RETRY, "Safety Shield unavailable",
         "The upload is idempotent: clear the district's upload task once Safety Shield answers again."),
    Rule(RunInputError, Decision.FAIL, "the run's input",
         "Trigger the run again with the field the error names corrected."),
    Rule(ConfigError, Decision.FAIL, "the districts file",
         "Correct the districts file at the district and field the error names; the DAGs pick it up at their "
         "next parse."),
    Rule(LedgerUnavailableError, Decision.RETRY, "attendance ledger unavailable",
         "Safety Shield has the run's attendance; only its record in the ledger failed (connection "
         "attendance_ledger). Fix the database, then clear the run's report task: it rewrites the run's rows."),
    Rule(GuardError, Decision.FAIL, "the data guard cannot ask anyone",
         "Dates were held for a person but no review could start: unpause clever_attendance_review (it must never "
         "be paused), then clear the district's transform task.", quoted=True),
    Rule(HITLTimeoutError, Decision.FAIL, "no decision in time",
         "A person did not decide on the held dates within hold_timeout_hours: nothing of them was uploaded. The "
         "district's next run asks again (Browse → Required Actions) while Clever holds the same data; clearing "
         "this review's decide task asks at once.", quoted=False),
    Rule(PipelineBug, Decision.FAIL, "our bug", BUG_ADVICE),
    Rule(AirflowTaskTimeout, Decision.RETRY, "took longer than its time limit",
         "The task was stopped at its execution_timeout and retried. If it persists, read how long each step "
         "took in the run's report and the waits in the task log (rate limit, Safety Shield's import).",
         quoted=False),
    Rule(TaskDeferralTimeout, Decision.RETRY, "no answer from the triggerer",
         "The upload waited for Safety Shield's import in the triggerer past import_timeout and no event came: "
         "check that the triggerer runs. The upload is idempotent: it was retried, and clearing it is safe.",
         quoted=False),
    Rule(OSError, Decision.RETRY, "staging storage unavailable",
         "Reading or writing the staging area failed (ATTENDANCE_STAGING_URL: a full disk, a volume or bucket "
         "not mounted or not permitted). Fix the storage, then clear the district's task group.", quoted=False),
)
UNFORESEEN = Rule(BaseException, Decision.FAIL, "our bug", BUG_ADVICE, quoted=False)


def rule_for(error: BaseException) -> Rule:
    """The rule of an exception: the first that matches it, else UNFORESEEN."""
    return next((rule for rule in RULES if isinstance(error, rule.failure)), UNFORESEEN)


def task_policy():
    """Airflow 3.3's retry_policy for every task of the DAGs: RULES, anything unnamed failing at once."""
    from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

    actions = {Decision.RETRY: RetryAction.RETRY, Decision.FAIL: RetryAction.FAIL}
    return ExceptionRetryPolicy(
        rules=[RetryRule(exception=r.failure, action=actions[r.decision],
                         reason=f"{r.category}: {r.decision.value}") for r in RULES],
        default=RetryAction.FAIL)


def classify(error: BaseException | None) -> tuple[str, str, str]:
    """(category, what to do next, the error as it may be quoted) of an exception or what it wraps.

    The first of the error and its causes that a rule names decides; only our own exceptions are quoted.
    """
    if error is None:
        return "unknown", BUG_ADVICE, "no exception was passed to the callback"
    seen: BaseException | None = error
    while seen is not None:
        rule = rule_for(seen)
        if rule is not UNFORESEEN:
            return rule.category, rule.advice, str(seen) if rule.quoted else f"{type(seen).__name__} (see the task log)"
        seen = seen.__cause__
    return UNFORESEEN.category, UNFORESEEN.advice, f"{type(error).__name__} (see the task log)"
