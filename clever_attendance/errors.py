"""Every failure the pipeline names: of Clever, of Safety Shield, of a run's input, and our own.

What each one means for retrying, and what the failure notice calls it, is decided in one place:
`clever_attendance.retry_policy`. Messages never hold student data.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A call failed; the message names the service, what went wrong, the district and the step, never student
    data."""

    service = "A service"
    category = "error"
    subject = "district"  # how the message names the district

    def __init__(self, district: str, step: str, detail: str) -> None:
        super().__init__(f"{self.service} {self.category} for {self.subject} {district} during {step}: {detail}")
        self.district, self.step, self.detail = district, step, detail


class CleverError(ServiceError):
    """A Clever call failed."""

    service = "Clever"
    category = "Clever error"


class CleverAuthError(CleverError):
    """Bad app credentials or a district token Clever refuses even after a fresh lookup."""

    category = "credentials refused"


class CleverContractError(CleverError):
    """Clever answered something the contract does not allow (400, 404, 501, unreadable JSON)."""

    category = "contract broken"


class CleverUnavailableError(CleverError):
    """Clever kept failing (5xx, timeouts, dropped connections, rate limits) past the hook's retry bound."""

    category = "unavailable"


class SafetyShieldError(ServiceError):
    """A Safety Shield step failed; the message names Clever's attendance too."""

    service = "Safety Shield"
    category = "Safety Shield error"
    subject = "Clever attendance of district"


class SafetyShieldRefusedError(SafetyShieldError):
    """Safety Shield refused the request or the file (400, 401, 403, 409, 413, import failed)."""

    category = "refused the file"


class SafetyShieldFileTooLargeError(SafetyShieldRefusedError):
    """Safety Shield answered 413 with its limits: the upload operator splits under them and goes on."""

    category = "refused a file over its limits"

    def __init__(self, district: str, step: str, detail: str, max_bytes: int, max_rows: int) -> None:
        super().__init__(district, step, detail)
        self.max_bytes, self.max_rows = max_bytes, max_rows


class SafetyShieldRowsRejectedError(SafetyShieldError):
    """The file was imported, but Safety Shield rejected more rows than the district allows."""

    category = "rejected rows over the threshold"


class SafetyShieldUnavailableError(SafetyShieldError):
    """Safety Shield kept failing, or did not finish the import in time, past the hook's retry bound."""

    category = "unavailable"


class RunInputError(ValueError):
    """A run's input is wrong (its form, its window, a district it names); the message names the field."""


class LedgerUnavailableError(Exception):
    """The attendance ledger's database failed; the run's deliveries stand, its record is retried."""


class GuardError(Exception):
    """The data guard held dates but cannot ask a person about them (its review DAG paused, say)."""


class PipelineRejectsError(Exception):
    """The pipeline rejected more of a district's records than its max_pipeline_reject_share: nothing uploaded."""


class PipelineBug(Exception):  # noqa: N818 - named for what it is: not a fault of Clever, Safety Shield or input
    """An invariant of our own code broke (counts that do not balance, the CSV failing its own schema)."""


class ConfigError(ValueError):
    """A mistake in the districts file; the message names the file, the district and the field."""
