"""Clever's API for Airflow: the hook and the errors it raises."""

from clever.errors import CleverAuthError, CleverContractError, CleverError, CleverUnavailableError
from clever.hook import CleverHook

__all__ = ["CleverAuthError", "CleverContractError", "CleverError", "CleverHook", "CleverUnavailableError"]
