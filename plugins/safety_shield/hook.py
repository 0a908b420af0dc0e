"""SafetyShieldHook: Safety Shield's dataFileUpload API, one session, retries by the API's rules."""

from __future__ import annotations

import time

import requests
from airflow.sdk import BaseHook

from connection_url import base_url
from safety_shield.errors import SafetyShieldRefusedError, SafetyShieldUnavailableError
from service_failures import NETWORK_ERRORS, backoff_seconds

UPLOADS = "/api/v1/dataFileUpload"
FINAL = ("completed", "failed")


class SafetyShieldHook(BaseHook):
    """Posts attendance CSV files and follows their imports.

    Connection (`conn_type` http): `host` is the API base URL, `password` the API key. Extras:
    `timeout` (s, 120), `max_retries` (6), `backoff_seconds` (1.0), `poll_seconds` (1.0),
    `max_bytes` (25,000,000) and `max_rows` (200,000): the API's file limits.
    """

    conn_name_attr = "safety_shield_conn_id"
    default_conn_name = "safety_shield_default"
    conn_type = "http"
    hook_name = "Safety Shield"

    def __init__(self, district: str, safety_shield_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.district = district  # how errors and logs name the district: slug and Safety Shield id
        self.safety_shield_conn_id = safety_shield_conn_id
        self._session: requests.Session | None = None

    def get_conn(self) -> requests.Session:
        if self._session is None:
            conn = self.get_connection(self.safety_shield_conn_id)
            extra = conn.extra_dejson
            if not conn.host or not conn.password:
                raise SafetyShieldRefusedError(self.district, "reading the connection",
                                               f"connection {self.safety_shield_conn_id!r} needs host and password")
            self.base_url = base_url(conn)
            self.timeout = float(extra.get("timeout", 120))
            self.max_retries = int(extra.get("max_retries", 6))
            self.backoff = float(extra.get("backoff_seconds", 1.0))
            self.poll_seconds = float(extra.get("poll_seconds", 1.0))
            self.max_bytes = int(extra.get("max_bytes", 25_000_000))
            self.max_rows = int(extra.get("max_rows", 200_000))
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {conn.password}"
            self._session = session
        return self._session

    def _call(self, step: str, method: str, path: str, **kwargs) -> requests.Response:
        """One API call; 429/503 wait for Retry-After, other 5xx and network faults back off, 4xx do not retry."""
        session = self.get_conn()
        for attempt in range(self.max_retries + 1):
            try:
                answer = session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
            except NETWORK_ERRORS as exc:
                why, wait = type(exc).__name__, None
            else:
                if answer.status_code < 400:
                    return answer
                if answer.status_code < 500 and answer.status_code != 429:
                    raise SafetyShieldRefusedError(self.district, step,
                                                   f"HTTP {answer.status_code} {_error_name(answer)}")
                why, wait = f"HTTP {answer.status_code}", _retry_after(answer)
            if attempt == self.max_retries:
                raise SafetyShieldUnavailableError(self.district, step, f"{why}, {attempt + 1} attempts")
            delay = wait if wait is not None else backoff_seconds(self.backoff, attempt)
            self.log.warning("Safety Shield, Clever district %s: %s during %s; retry %d in %.1fs",
                             self.district, why, step, attempt + 1, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def upload(self, safety_shield_district_id: str, content: bytes, idempotency_key: str) -> str:
        """Post one CSV file; returns its upload id (the first upload's id again for a repeated key and file)."""
        answer = self._call(
            "upload", "POST", UPLOADS, headers={"Idempotency-Key": idempotency_key},
            data={"districtId": safety_shield_district_id, "fileType": "attendance", "sourceSystem": "clever"},
            files={"file": ("attendance.csv", content, "text/csv")})
        return answer.json()["uploadId"]

    def get_import(self, upload_id: str) -> dict:
        return self._call("reading the import status", "GET", f"{UPLOADS}/{upload_id}").json()

    def wait_for_import(self, upload_id: str, timeout: float) -> dict:
        """Poll until the import is completed or failed."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.get_import(upload_id)
            if result["status"] in FINAL:
                return result
            if time.monotonic() > deadline:
                raise SafetyShieldUnavailableError(self.district, "waiting for the import",
                                                   f"upload {upload_id} still {result['status']} after {timeout:.0f}s")
            time.sleep(self.poll_seconds)


def _retry_after(answer: requests.Response) -> float | None:
    try:
        return float(answer.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _error_name(answer: requests.Response) -> str:
    """The API's error code (file_too_large, idempotency_conflict...), never the body's free text."""
    try:
        return str(answer.json().get("error", ""))[:80]
    except ValueError:
        return ""
