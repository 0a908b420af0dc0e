"""The one retry policy: for every failure, who retries it (a hook, Airflow, or nobody) and what the notice calls it.

Three layers can retry, and each asks this module instead of deciding for itself:

1. **Inside a hook**, one HTTP call at a time: `clever_action` says what both Clever clients (`CleverHook`
   and the asynchronous reader of `last_attendance_sync`) do with an answer or a network fault (read it, wait
   for the rate limit, back off, look the token up again, ask for a smaller page, or raise which error), and
   `safety_shield_answer` what `SafetyShieldHook` does with a status; a network fault backs off. When the
   hook's own bound runs out it raises an error of `clever_attendance.errors`.
2. **Airflow's task retries** (`task_retries`, exponential backoff from `retry_delay_seconds`): every task
   carries `task_policy()`, Airflow 3.3's `ExceptionRetryPolicy` built from `RULES`, so only failures marked
   `RETRY` there are tried again.
3. **Nobody**: everything else fails the task on its first try, `AirflowFailException`'s outcome, including
   any exception `RULES` does not name: an unforeseen exception is our bug, and retrying a bug repeats it.

`RULES` also gives each failure's category and advice for the failure notice (`classify`).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum

import requests
from airflow.providers.standard.exceptions import HITLTimeoutError
from airflow.sdk.exceptions import AirflowTaskTimeout, TaskDeferralTimeout

from clever_attendance.errors import (
    CleverAuthError,
    CleverContractError,
    CleverError,
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
from clever_attendance.hooks.ratelimit import retry_at

# --- 1. inside a hook -------------------------------------------------------------------------------------------


class InHook(Enum):
    """What a hook does with one answer of a service."""

    READ = "read: the answer is what was asked for"
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

WAIT_JITTER = 0.5
"""Up to this many seconds added to a 429's wait, so that the callers it stopped do not come back at once."""

# Clever's documented API: 429 waits for the reset; 500-504 back off; 401 looks the token up again once;
# 413 (page too large) lowers `limit`; 403 is an auth error; 400, 404, 501 and anything else break the contract.
_CLEVER = {429: InHook.WAIT, 401: InHook.REFRESH_TOKEN, 413: InHook.SMALLER_PAGE,
           **dict.fromkeys((500, 502, 503, 504), InHook.BACKOFF)}


@dataclass(frozen=True)
class CleverAnswer:
    """One HTTP answer of Clever, as `clever_action` reads it: `body` is the JSON it parsed to, if `is_json`."""

    status: int
    headers: Mapping[str, str]
    body: object = None
    is_json: bool = False

    @classmethod
    def read(cls, status: int, headers: Mapping[str, str], content: bytes) -> CleverAnswer:
        """The answer with its body parsed: the one JSON reading of both Clever clients."""
        try:
            return cls(status, headers, json.loads(content), True)
        except ValueError:  # not JSON, or not UTF-8
            return cls(status, headers)


@dataclass(frozen=True)
class CleverCall:
    """One Clever request, and what its tries went through so far."""

    district: str
    step: str  # what an error names: "GET <path>", never the query (cursors carry student ids)
    max_retries: int  # the connection's: failures backed off before the call gives up
    backoff: float  # the connection's backoff_seconds
    can_refresh: bool  # app credentials: the district token can be looked up again
    limit: int | None = None  # the page size asked for; None when the request reads no list
    failures: int = 0  # network faults, 5xx and unreadable 200s so far
    waits: int = 0  # 429s waited out so far
    refreshed: bool = False  # the district token was looked up again already


@dataclass(frozen=True)
class Action:
    """What a Clever client does next, and `call`, the state it goes on with."""

    do: InHook  # READ, WAIT, BACKOFF, REFRESH_TOKEN, SMALLER_PAGE or RAISE
    call: CleverCall
    seconds: float = 0.0  # WAIT and BACKOFF: how long before the next try
    body: dict | None = None  # READ: the JSON object Clever answered
    error: CleverError | None = None  # RAISE
    why: str = ""  # what went wrong, for the log: "HTTP 503", "ConnectError", "invalid JSON"


def clever_action(call: CleverCall, answer: CleverAnswer | Exception, now: float) -> Action:
    """What to do with Clever's answer to `call` (or the network error that stopped it) at Unix time `now`.

    answer                                     action ("then": once the call's max_retries are spent)
    200 with a JSON object                     READ it
    200 with other JSON (list, string, null)   RAISE CleverContractError
    200 whose body is not JSON                 BACKOFF, like a body cut short; then RAISE CleverContractError
    network error (refused, reset, timed out,  BACKOFF; then RAISE CleverUnavailableError
      body cut short)
    500, 502, 503, 504                         BACKOFF; then RAISE CleverUnavailableError
    429                                        WAIT for Retry-After, else the exhausted bucket's reset, plus up to
                                                 WAIT_JITTER; after MAX_429_WAITS waits, RAISE CleverUnavailableError
    401                                        REFRESH_TOKEN once when the token comes from app credentials;
                                                 then (or with a token held directly) RAISE CleverAuthError
    403                                        RAISE CleverAuthError
    413 to a list asked with a limit over 1    SMALLER_PAGE: half the limit
    anything else (400, 404, 501, another      RAISE CleverContractError, quoting Clever's message
      2xx or 3xx, a 413 that cannot shrink)

    Network errors, 5xx and unreadable 200s spend one budget, `max_retries`. No I/O: the only randomness
    is the jitter of the waits.
    """
    if isinstance(answer, Exception):
        return _backoff(call, type(answer).__name__, CleverUnavailableError)
    status = answer.status
    if status == 200:
        if not answer.is_json:
            return _backoff(call, "invalid JSON", CleverContractError, "the answer is not JSON")
        if not isinstance(answer.body, dict):
            return _raise(call, CleverContractError, "the answer is not a JSON object")
        return Action(InHook.READ, call, body=answer.body)
    kind = _CLEVER.get(status, InHook.RAISE)
    if kind is InHook.BACKOFF:
        return _backoff(call, f"HTTP {status}", CleverUnavailableError)
    if kind is InHook.WAIT:
        if call.waits >= MAX_429_WAITS:
            return _raise(call, CleverUnavailableError, f"still rate-limited after {MAX_429_WAITS} waits")
        seconds = max(0.0, retry_at(answer.headers, now) - now) + random.uniform(0, WAIT_JITTER)
        return Action(InHook.WAIT, replace(call, waits=call.waits + 1), seconds=seconds, why="HTTP 429")
    if kind is InHook.REFRESH_TOKEN and call.can_refresh and not call.refreshed:
        return Action(InHook.REFRESH_TOKEN, replace(call, refreshed=True), why="HTTP 401")
    if kind is InHook.SMALLER_PAGE and call.limit is not None and call.limit > 1:
        return Action(InHook.SMALLER_PAGE, call, why="HTTP 413")
    if status in (401, 403):
        return _raise(call, CleverAuthError, f"HTTP {status}: token refused")
    return _raise(call, CleverContractError, f"HTTP {status}: {_message(answer)}")


def _backoff(call: CleverCall, why: str, spent: type[CleverError], detail: str = "") -> Action:
    """Back off, or once the call's max_retries are spent raise `spent` (with `detail`, else what failed)."""
    if call.failures >= call.max_retries:
        return _raise(call, spent, detail or f"{why}, {call.failures + 1} attempts")
    return Action(InHook.BACKOFF, replace(call, failures=call.failures + 1),
                  seconds=backoff_seconds(call.backoff, call.failures), why=why)


def _raise(call: CleverCall, error: type[CleverError], detail: str) -> Action:
    return Action(InHook.RAISE, call, error=error(call.district, call.step, detail))


def _message(answer: CleverAnswer) -> str:
    """Clever's own error message, short and printable; an HTML body (wrong token type) is named, not quoted."""
    if not answer.is_json:
        return "non-JSON body" + (" (HTML)" if "html" in answer.headers.get("content-type", "") else "")
    message = answer.body.get("message") if isinstance(answer.body, dict) else None
    # it lands in logs and failure notices: no line breaks, escapes or lone surrogates from Clever
    return re.sub(r"[^\x20-\x7e]", "?", message[:200]) if isinstance(message, str) else ""


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
         "shared with the district in Clever's dashboard; then clear the district's sync instance."),
    Rule(CleverUnavailableError, Decision.RETRY, "Clever unavailable or rate-limited",
         "Nothing to fix on our side if it passes: the task was retried. If it persists, check Clever's status "
         "page and whether another app spends the district's rate limit; then clear the district's sync instance."),
    Rule(CleverContractError, Decision.FAIL, "Clever contract changed",
         "Clever answered outside its documented contract (the attendance API is a preview). Compare the error "
         "with Clever's attendance API documentation and adapt CleverHook; a configured school missing from "
         "Clever lands here too."),
    Rule(SafetyShieldRefusedError, Decision.FAIL, "Safety Shield refused the file",
         "Check the Safety Shield connection (API key, base URL) and the district's Safety Shield id; a failed "
         "import names its file-level fault. Then clear the district's sync instance."),
    Rule(SafetyShieldRowsRejectedError, Decision.FAIL, "Safety Shield rejected rows over the threshold",
         "The good rows were imported. Read the columns at fault in the error and rejects.csv in staging, fix "
         "the district's configuration (code map, student number field), then clear the district's sync instance."),
    Rule(PipelineRejectsError, Decision.FAIL, "the pipeline rejected records over the threshold",
         "Nothing of the district's window was uploaded. Read the reasons in the error and the district's "
         "rejects.csv in staging (a failed run's files stay staging_retention_days), fix the cause (roster, "
         "student_number_field, code map) or raise max_pipeline_reject_share, then clear the district's sync "
         "instance."),
    Rule(SafetyShieldUnavailableError, Decision.RETRY, "Safety Shield unavailable",
         "The upload is idempotent: clear the district's sync instance once Safety Shield answers again; it starts at "
         "the upload, without reading Clever again."),
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
         "be paused), then clear the district's sync instance.", quoted=True),
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
         "check that the triggerer runs. The upload is idempotent: the district's sync was retried from its upload, "
         "and clearing it is safe.",
         quoted=False),
    Rule(OSError, Decision.RETRY, "staging storage unavailable",
         "Reading or writing the staging area failed (ATTENDANCE_STAGING_URL: a full disk, a volume or bucket "
         "not mounted or not permitted). Fix the storage, then clear the district's sync instance.", quoted=False),
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
