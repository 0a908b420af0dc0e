"""What can go wrong talking to Clever, split by what the DAG should do about it."""

from __future__ import annotations


class CleverError(Exception):
    """A Clever call failed; the message names Clever, the district and the step, never student data."""

    category = "Clever error"

    def __init__(self, district_id: str, step: str, detail: str) -> None:
        super().__init__(f"Clever {self.category} for district {district_id} during {step}: {detail}")
        self.district_id = district_id
        self.step = step


class CleverAuthError(CleverError):
    """Bad app credentials or a district token Clever refuses even after a fresh lookup: do not retry."""

    category = "credentials refused"


class CleverContractError(CleverError):
    """Clever answered something the contract does not allow (400, 404, 501, unreadable JSON): do not retry."""

    category = "contract broken"


class CleverUnavailableError(CleverError):
    """Clever kept failing (5xx, timeouts, dropped connections, rate limits) past the retry bound: retry later."""

    category = "unavailable"
