"""What can go wrong delivering Clever attendance to Safety Shield, split by what the DAG should do."""

from __future__ import annotations

from service_failures import ServiceError


class SafetyShieldError(ServiceError):
    """A Safety Shield step failed; the message names Clever's attendance too."""

    service = "Safety Shield"
    category = "Safety Shield error"
    subject = "Clever attendance of district"


class SafetyShieldRefusedError(SafetyShieldError):
    """Safety Shield refused the request or the file (400, 401, 403, 409, 413, import failed): do not retry."""

    category = "refused the file"


class SafetyShieldRowsRejectedError(SafetyShieldError):
    """The file was imported, but Safety Shield rejected more rows than the district allows."""

    category = "rejected rows over the threshold"


class SafetyShieldUnavailableError(SafetyShieldError):
    """Safety Shield kept failing or did not finish the import in time: retry later (the upload is idempotent)."""

    category = "unavailable"
