"""What can go wrong talking to Clever, split by what the DAG should do about it."""

from __future__ import annotations

from service_failures import ServiceError


class CleverError(ServiceError):
    """A Clever call failed."""

    service = "Clever"
    category = "Clever error"


class CleverAuthError(CleverError):
    """Bad app credentials or a district token Clever refuses even after a fresh lookup: do not retry."""

    category = "credentials refused"


class CleverContractError(CleverError):
    """Clever answered something the contract does not allow (400, 404, 501, unreadable JSON): do not retry."""

    category = "contract broken"


class CleverUnavailableError(CleverError):
    """Clever kept failing (5xx, timeouts, dropped connections, rate limits) past the retry bound: retry later."""

    category = "unavailable"
