"""How a call to an outside service (Clever, Safety Shield) fails and is retried: shared by both hooks."""

from __future__ import annotations

import random

import requests

NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def backoff_seconds(base: float, retry: int) -> float:
    """Exponential from `base`, at most a minute, with jitter so that parallel callers spread out."""
    return min(60.0, base * 2**retry) * random.uniform(0.5, 1.0)


class ServiceError(Exception):
    """A call failed; the message names the service, what went wrong, the district and the step, never student
    data."""

    service = "A service"
    category = "error"
    subject = "district"  # how the message names the district

    def __init__(self, district: str, step: str, detail: str) -> None:
        super().__init__(f"{self.service} {self.category} for {self.subject} {district} during {step}: {detail}")
        self.district = district
        self.step = step
