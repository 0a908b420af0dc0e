"""Safety Shield's dataFileUpload API for Airflow: the hook, the upload operator and their errors."""

from safety_shield.errors import (
    SafetyShieldError,
    SafetyShieldRefusedError,
    SafetyShieldRowsRejectedError,
    SafetyShieldUnavailableError,
)
from safety_shield.hook import SafetyShieldHook
from safety_shield.operator import SafetyShieldUploadOperator

__all__ = ["SafetyShieldError", "SafetyShieldHook", "SafetyShieldRefusedError", "SafetyShieldRowsRejectedError",
           "SafetyShieldUnavailableError", "SafetyShieldUploadOperator"]
