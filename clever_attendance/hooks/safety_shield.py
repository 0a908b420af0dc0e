"""SafetyShieldHook: Safety Shield's dataFileUpload API, one session, retries by the API's rules."""

from __future__ import annotations

import re
import time
from collections import Counter

import requests
from airflow.sdk import BaseHook, Connection

from clever_attendance.contracts import Import
from clever_attendance.errors import (
    SafetyShieldError,
    SafetyShieldFileTooLargeError,
    SafetyShieldRefusedError,
    SafetyShieldUnavailableError,
)
from clever_attendance.hooks.connection import base_url
from clever_attendance.provider import read_extras, ui_field_behaviour
from clever_attendance.retry_policy import NETWORK_ERRORS, InHook, backoff_seconds, safety_shield_answer
from clever_attendance.settings import SAFETY_SHIELD_CONN_ID, SAFETY_SHIELD_CONN_TYPE

UPLOADS = "/api/v1/dataFileUpload"
NAME = re.compile(r"[A-Za-z][A-Za-z_]{0,39}")  # a column's name or an error code: what may be quoted of an answer
FINAL = ("completed", "failed")


class SafetyShieldHook(BaseHook):
    """Posts attendance CSV files and follows their imports.

    Connection (type `safety_shield`; an `http` connection with the same fields works too): `host` is
    the API base URL, `password` the API key. The extras it reads (timeouts, retries, the API's file
    limits), with their defaults, are declared in `clever_attendance.provider.EXTRAS`; which answers it
    retries is `clever_attendance.retry_policy`'s.
    """

    conn_name_attr = "safety_shield_conn_id"
    default_conn_name = SAFETY_SHIELD_CONN_ID
    conn_type = SAFETY_SHIELD_CONN_TYPE
    hook_name = "Safety Shield"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict:
        return ui_field_behaviour(SAFETY_SHIELD_CONN_TYPE)

    def __init__(self, district: str = "", safety_shield_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.district = district  # how errors and logs name the district: slug and Safety Shield id
        self.safety_shield_conn_id = safety_shield_conn_id
        self._session: requests.Session | None = None

    def get_conn(self) -> requests.Session:
        if self._session is None:
            self._configure(self.get_connection(self.safety_shield_conn_id))
        return self._session

    async def aget_conn(self) -> requests.Session:
        """get_conn for a trigger: the connection is read without blocking the triggerer's event loop."""
        if self._session is None:
            self._configure(await self.aget_connection(self.safety_shield_conn_id))
        return self._session

    def _configure(self, conn: Connection) -> None:
        extra = read_extras(SAFETY_SHIELD_CONN_TYPE, conn.extra_dejson)
        if not conn.host or not conn.password:
            raise SafetyShieldRefusedError(self.district, "reading the connection",
                                           f"connection {self.safety_shield_conn_id!r} needs host and password")
        self.base_url = base_url(conn)
        self.timeout, self.max_retries = extra["timeout"], extra["max_retries"]
        self.backoff, self.poll_seconds = extra["backoff_seconds"], extra["poll_seconds"]
        self.max_bytes, self.max_rows = extra["max_bytes"], extra["max_rows"]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {conn.password}"
        self._session = session

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
                action = safety_shield_answer(answer.status_code)
                if action is InHook.SPLIT:
                    raise _too_large(self.district, step, answer)
                if action is InHook.RAISE:
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

    def test_connection(self) -> tuple[bool, str]:
        """One cheap real call, for the Connections form's Test button: the status of an upload that does not
        exist, which Safety Shield answers 404 to a key it accepts and 401 or 403 to one it refuses."""
        try:
            answer = self.get_conn().get(f"{self.base_url}{UPLOADS}/connection-test", timeout=self.timeout)
        except SafetyShieldError as error:
            return False, f"Safety Shield connection {self.safety_shield_conn_id!r}: {error.detail}"
        except NETWORK_ERRORS as error:
            return False, f"Safety Shield did not answer at {self.base_url}: {type(error).__name__}"
        if answer.status_code in (401, 403):
            return False, f"Safety Shield refused the API key (HTTP {answer.status_code}) at {self.base_url}"
        if answer.status_code in (200, 404):
            return True, f"Safety Shield accepted the API key at {self.base_url}"
        return False, f"Safety Shield answered HTTP {answer.status_code} at {self.base_url}{UPLOADS}"

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
        """Poll until the import is completed or failed (blocking: the operator defers to the trigger instead)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.get_import(upload_id)
            if result["status"] in FINAL:
                return result
            if time.monotonic() > deadline:
                raise SafetyShieldUnavailableError(self.district, "waiting for the import",
                                                   f"upload {upload_id} still {result['status']} after {timeout:.0f}s")
            time.sleep(self.poll_seconds)


def _too_large(district: str, step: str, answer: requests.Response) -> SafetyShieldRefusedError:
    """A 413's limits as an error the operator splits under; without them, a plain refusal."""
    try:
        body = answer.json()
        return SafetyShieldFileTooLargeError(district, step, "HTTP 413 file_too_large", int(body["maxBytes"]),
                                             int(body["maxRows"]))
    except (ValueError, KeyError, TypeError):
        return SafetyShieldRefusedError(district, step, "HTTP 413 without the limits it refused the file for")


def import_summary(result: dict) -> Import:
    """An import's status in brief, from Safety Shield's answer: counts, the columns rows were rejected for, and a
    failed file's fault; never the row-level messages, which may quote the file's values (student numbers)."""
    columns = [_column(e.get("column")) for e in result.get("errors", [])]
    file_error = None
    if result.get("status") == "failed":  # a category, a count and an id: Safety Shield's own words are not ours
        found = columns or ["(file)"]
        file_error = f"{len(found)} file-level fault(s), first at column {found[0]}"
    return Import(result.get("uploadId"), result.get("status"), result.get("rowsReceived"), result.get("rowsImported"),
                  result.get("rowsRejected"), result.get("completedAt"), dict(Counter(columns)), file_error)


def _column(name) -> str:
    """A column Safety Shield names, as a name alone; never free text."""
    return name if isinstance(name, str) and NAME.fullmatch(name) else "(row)" if not name else "(not a column name)"


def _retry_after(answer: requests.Response) -> float | None:
    try:
        return float(answer.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _error_name(answer: requests.Response) -> str:
    """The API's error code (file_too_large, idempotency_conflict...), never the body's free text."""
    try:
        code = answer.json().get("error", "")
    except (ValueError, AttributeError):
        return ""
    return code if isinstance(code, str) and NAME.fullmatch(code) else "(an error code not in its contract)"
