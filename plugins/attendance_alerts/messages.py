"""The words of every alert: which district, which step, what kind of failure, and what to do next.

No student data can reach a message: only our own exceptions' messages are quoted (they are written
to hold none); anything else is named by its type only, with a pointer to the task log.
"""

from __future__ import annotations

from clever.errors import CleverAuthError, CleverContractError, CleverUnavailableError
from safety_shield.errors import (
    SafetyShieldRefusedError,
    SafetyShieldRowsRejectedError,
    SafetyShieldUnavailableError,
)

CATEGORIES: list[tuple[type[Exception], str, str]] = [
    (CleverAuthError, "Clever credentials",
     "Check the Clever connection (client id and secret, or district token) and that the app is still "
     "shared with the district in Clever's dashboard; then clear the district's task group."),
    (CleverUnavailableError, "Clever unavailable or rate-limited",
     "Nothing to fix on our side if it passes: the task was retried. If it persists, check Clever's status "
     "page and whether another app spends the district's rate limit; then clear the district's task group."),
    (CleverContractError, "Clever contract changed",
     "Clever answered outside its documented contract (the attendance API is a preview). Compare the error "
     "with spec/clever-api.md and adapt CleverHook; a configured school missing from Clever lands here too."),
    (SafetyShieldRefusedError, "Safety Shield refused the file",
     "Check the Safety Shield connection (API key, base URL) and the district's Safety Shield id; a failed "
     "import names its file-level fault. Then clear the district's upload task."),
    (SafetyShieldRowsRejectedError, "Safety Shield rejected rows over the threshold",
     "The good rows were imported. Read the columns at fault in the error and rejects.csv in staging, fix "
     "the district's configuration (code map, student number field), then clear the district's task group."),
    (SafetyShieldUnavailableError, "Safety Shield unavailable",
     "The upload is idempotent: clear the district's upload task once Safety Shield answers again."),
]
BUG = ("our bug", "A defect in the pipeline, not in Clever or Safety Shield: read the task log and open an "
                  "issue with it. Clearing the task will fail the same way.")


def classify(error: BaseException | None) -> tuple[str, str, str]:
    """(category, what to do next, the error as it may be quoted) of an exception or what it wraps."""
    seen = error
    while seen is not None:
        for kind, category, advice in CATEGORIES:
            if isinstance(seen, kind):
                return category, advice, str(seen)
        seen = seen.__cause__
    if error is None:
        return "unknown", BUG[1], "no exception was passed to the callback"
    return BUG[0], BUG[1], f"{type(error).__name__} (see the task log)"


def district_line(district: dict) -> str:
    return (f"{district['name']} (slug {district['slug']}, Clever district {district['clever_district_id']}, "
            f"Safety Shield {district['safety_shield_district_id']})")

