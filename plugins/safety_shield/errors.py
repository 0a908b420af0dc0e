"""What can go wrong delivering Clever attendance to Safety Shield, split by what the DAG should do."""

from __future__ import annotations


class SafetyShieldError(Exception):
    """A Safety Shield step failed; the message names Clever, the district and the step, never student data."""

    category = "Safety Shield error"

    def __init__(self, district: str, step: str, detail: str) -> None:
        super().__init__(f"Safety Shield {self.category} for Clever attendance of district {district} "
                         f"during {step}: {detail}")
        self.district = district
        self.step = step


class SafetyShieldRefusedError(SafetyShieldError):
    """Safety Shield refused the request or the file (400, 401, 403, 409, 413, import failed): do not retry."""

    category = "refused the file"


class SafetyShieldRowsRejectedError(SafetyShieldError):
    """The file was imported, but Safety Shield rejected more rows than the district allows."""

    category = "rejected rows over the threshold"


class SafetyShieldUnavailableError(SafetyShieldError):
    """Safety Shield kept failing or did not finish the import in time: retry later (the upload is idempotent)."""

    category = "unavailable"
