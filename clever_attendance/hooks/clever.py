"""CleverHook: one district's roster and attendance from Clever's API v3.1, as plain dicts."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
from airflow.sdk import BaseHook
from requests.adapters import HTTPAdapter

from clever_attendance.errors import CleverAuthError, CleverContractError, CleverError, CleverUnavailableError
from clever_attendance.hooks.connection import base_url
from clever_attendance.hooks.ratelimit import RateLimiter, retry_at
from clever_attendance.provider import read_extras, ui_field_behaviour
from clever_attendance.retry_policy import MAX_429_WAITS, NETWORK_ERRORS, InHook, backoff_seconds, clever_answer
from clever_attendance.settings import CLEVER_CONN_ID, CLEVER_CONN_TYPE

API = "/v3.1"
ROSTER_LIMIT = 10_000
ATTENDANCE_LIMIT = 1_000
REQUIRED = ("attendance_date", "attendance_status", "attendance_type", "created", "last_modified",
            "district_id", "school_id", "student_id")
OPTIONAL = ("section_id", "excuse_code", "sis_id")
# a link the hook may follow: a path on the API host, in URL characters only (no `//host`, no backslash,
# no whitespace); the district's token goes with it
LINK_PATH = re.compile(r"/(?!/)[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]{0,4096}")
TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")  # what an Authorization header may carry


@dataclass
class CleverStats:
    """What an extraction cost: the totals logged at the end."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    waited_seconds: float = 0.0
    pages: int = 0
    records: int = 0
    missing_required: int = 0
    unusable_roster: int = 0  # roster items that are not an object with a `data` object: left out

    def add(self, **counts: float) -> None:
        with _STATS_LOCK:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_STATS_LOCK = threading.Lock()


class _LimitTooLargeError(Exception):
    """Clever answered 413: the page size must come down."""


class CleverHook(BaseHook):
    """One district's view of Clever: a token, one HTTP session, a rate limiter and the retry rules.

    Connection (type `clever`; an `http` connection with the same fields works too): `host` is the API
    base URL. With `login` and `password` they are the app's client id and secret, and the district
    token is looked up at `extra.oauth_url` (default https://clever.com); with only `password` it is
    the district token itself. The extras it reads, with their defaults, are declared in
    `clever_attendance.provider.EXTRAS`; which answers it retries is `clever_attendance.retry_policy`'s.
    `district_id` may be left out only to test the connection.
    """

    conn_name_attr = "clever_conn_id"
    default_conn_name = CLEVER_CONN_ID
    conn_type = CLEVER_CONN_TYPE
    hook_name = "Clever"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict:
        return ui_field_behaviour(CLEVER_CONN_TYPE)

    def __init__(self, district_id: str = "", clever_conn_id: str = default_conn_name, rate_share: float = 1.0
                 ) -> None:
        super().__init__()
        self.district_id = district_id
        self.clever_conn_id = clever_conn_id
        self.rate_share = rate_share  # of the connection's requests_per_minute: a reconciliation leaves polls room
        self.stats = CleverStats()
        self._session: requests.Session | None = None
        self._token: str | None = None
        self._token_lock = threading.Lock()

    # connection ---------------------------------------------------------------------------

    def get_conn(self) -> requests.Session:
        """The hook's one session, built from the connection on first use."""
        if self._session is None:
            conn = self.get_connection(self.clever_conn_id)
            extra = read_extras(CLEVER_CONN_TYPE, conn.extra_dejson)
            self.base_url = base_url(conn, "https://api.clever.com")
            self.oauth_url = extra["oauth_url"].rstrip("/")
            self.client_id, self.secret = conn.login, conn.password
            if not self.secret:
                raise CleverAuthError(self.district_id, "reading the connection",
                                      f"connection {self.clever_conn_id!r} has no password (client secret or token)")
            self.timeout, self.max_retries = extra["timeout"], extra["max_retries"]
            self.max_concurrency, self.backoff = extra["max_concurrency"], extra["backoff_seconds"]
            self.limiter = RateLimiter(extra["requests_per_minute"] * self.rate_share, burst=self.max_concurrency,
                                       reserve=self.max_concurrency + 2)
            session = requests.Session()
            session.verify = extra["verify"]
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.max_concurrency + 1)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._session = session
        return self._session

    def _district_token(self, refresh: bool = False) -> str:
        with self._token_lock:
            if self._token and not refresh:
                return self._token
            if not self.client_id:
                self._token = self.secret  # a district token held directly
                return self._token
            step = "looking up the district token"
            try:
                answer = self._tokens(district=self.district_id)
            except NETWORK_ERRORS as exc:
                raise CleverUnavailableError(self.district_id, step, type(exc).__name__) from None
            if answer.status_code in (401, 403):
                raise CleverAuthError(self.district_id, step, f"HTTP {answer.status_code}: app credentials refused")
            if answer.status_code != 200:
                raise CleverUnavailableError(self.district_id, step, f"HTTP {answer.status_code}")
            try:
                tokens = [t["access_token"] for t in answer.json()["data"] if t["owner"]["id"] == self.district_id]
            except (ValueError, KeyError, TypeError):
                raise CleverContractError(self.district_id, step, "the answer is not a list of tokens") from None
            if not tokens:
                raise CleverAuthError(self.district_id, step,
                                      "Clever has no token: is the app shared with the district?")
            if not isinstance(tokens[0], str) or not TOKEN.fullmatch(tokens[0]):
                raise CleverContractError(self.district_id, step, "the district token is not a bearer token")
            self._token = tokens[0]
            return self._token

    def _tokens(self, **params: str) -> requests.Response:
        """Clever's list of the app's district tokens (of one district with `district=`), by client credentials."""
        return self.get_conn().get(f"{self.oauth_url}/oauth/tokens", auth=(self.client_id, self.secret),
                                   params={"owner_type": "district", **params}, timeout=self.timeout)

    def test_connection(self) -> tuple[bool, str]:
        """One cheap real call, for the Connections form's Test button; the answer never holds a secret."""
        try:
            self.get_conn()
            if not self.client_id:  # a district token: the districts it sees
                seen = [item["data"].get("name") for item in self._get(f"{API}/districts").get("data", [])]
                return True, f"Clever accepted the district token: it sees {', '.join(map(str, seen)) or 'no district'}"
            answer = self._tokens()
        except CleverError as error:
            return False, (f"Clever connection {self.clever_conn_id!r}: {error.category} during {error.step}: "
                           f"{error.detail}")
        except NETWORK_ERRORS as error:
            return False, f"Clever did not answer at {self.oauth_url}: {type(error).__name__}"
        if answer.status_code != 200:
            return False, (f"Clever refused the app's client id and secret (HTTP {answer.status_code}) "
                           f"at {self.oauth_url}/oauth/tokens")
        shared = len(answer.json().get("data", []))
        return True, f"Clever accepted the app's client id and secret: {shared} district(s) share data with the app"

    # one request ---------------------------------------------------------------------------

    def _get(self, path_and_query: str) -> dict:
        """GET one page: rate-limited, retried by the rules of docs/clever-api.md."""
        session = self.get_conn()
        step = "GET " + urlsplit(path_and_query).path  # never the query: cursors carry student ids
        refreshed = False
        failures = throttles = 0
        while True:
            self.stats.add(waited_seconds=self.limiter.acquire(), requests=1)
            token = self._district_token()
            try:
                answer = session.get(self.base_url + path_and_query, timeout=self.timeout,
                                     headers={"Authorization": f"Bearer {token}"})
            except NETWORK_ERRORS as exc:
                failures = self._backoff(failures, step, type(exc).__name__)
                continue
            self.limiter.observe(answer.headers)
            status = answer.status_code
            if status == 200:
                try:
                    body = answer.json()
                except ValueError:
                    if failures >= self.max_retries:
                        raise CleverContractError(self.district_id, step, "the answer is not JSON") from None
                    failures = self._backoff(failures, step, "invalid JSON")
                    continue
                if not isinstance(body, dict):
                    raise CleverContractError(self.district_id, step, "the answer is not a JSON object")
                return body
            action = clever_answer(status)
            if action is InHook.WAIT:
                throttles += 1
                if throttles > MAX_429_WAITS:
                    raise CleverUnavailableError(self.district_id, step,
                                                 f"still rate-limited after {MAX_429_WAITS} waits")
                until = retry_at(answer.headers, time.time()) + random.uniform(0, 0.5)
                self.limiter.pause_until(until)
                self.stats.add(throttled=1)
            elif action is InHook.REFRESH_TOKEN and not refreshed and self.client_id:
                self.log.info("Clever district %s: token refused, looking it up again", self.district_id)
                self._district_token(refresh=True)
                refreshed = True
            elif action is InHook.SMALLER_PAGE:
                raise _LimitTooLargeError
            elif action is InHook.BACKOFF:
                failures = self._backoff(failures, step, f"HTTP {status}")
            elif status in (401, 403):
                raise CleverAuthError(self.district_id, step, f"HTTP {status}: token refused")
            else:
                raise CleverContractError(self.district_id, step, f"HTTP {status}: {_message(answer)}")

    def _backoff(self, failures: int, step: str, why: str) -> int:
        if failures >= self.max_retries:
            raise CleverUnavailableError(self.district_id, step, f"{why}, {failures + 1} attempts")
        delay = backoff_seconds(self.backoff, failures)
        self.log.warning("Clever district %s: %s on %s; retry %d in %.1fs", self.district_id, why, step,
                         failures + 1, delay)
        self.stats.add(retries=1, waited_seconds=delay)
        time.sleep(delay)
        return failures + 1

    # listings -------------------------------------------------------------------------------

    def _pages(self, path: str, params: dict[str, Any], limit: int) -> Iterator[list]:
        """Every page's `data`, following the `next` links (on the API host only); 413 halves the limit."""
        uri = f"{path}?{urlencode({**params, 'limit': limit})}"
        while True:
            try:
                body = self._get(uri)
            except _LimitTooLargeError:
                limit = max(1, limit // 2)
                uri = _with_limit(uri, limit)
                self.log.info("Clever district %s: page size refused, now %d", self.district_id, limit)
                continue
            self.stats.add(pages=1)
            step = "GET " + urlsplit(uri).path
            data = body.get("data") or []
            links = body.get("links") or []
            if not isinstance(data, list) or not isinstance(links, list):
                raise CleverContractError(self.district_id, step, "`data` or `links` of a page is not a list")
            if data:
                yield data
            nxt = [link.get("uri") for link in _objects(links) if link.get("rel") == "next"]
            if not data or not nxt:
                return
            uri = self._on_host(nxt[0], step)

    def _on_host(self, link: object, step: str) -> str:
        """A `next` link as a path and query on the connection's host: a path, or a full URL that starts with
        the connection's base URL. Anything else (another host, a relative path that would extend the host's
        name or port, user info) would take the district's token elsewhere: Clever's contract broke, and the
        link is neither followed nor quoted."""
        if isinstance(link, str) and link.startswith(self.base_url + "/"):
            link = link[len(self.base_url):]
        if isinstance(link, str) and LINK_PATH.fullmatch(link):
            return link
        raise CleverContractError(self.district_id, step, "a next link that is not a path on the API host")

    def _roster(self, kind: str, **params: Any) -> Iterator[dict]:
        for page in self._pages(f"{API}/{kind}", params, ROSTER_LIMIT):
            items = [item["data"] for item in _objects(page) if isinstance(item.get("data"), dict)]
            if len(items) < len(page):
                self.stats.add(unusable_roster=len(page) - len(items))
                self.log.warning("Clever district %s: %d items of %s without a data object left out",
                                 self.district_id, len(page) - len(items), kind)
            yield from items

    def get_district(self) -> dict:
        """The district, with `last_attendance_sync`."""
        path = f"{API}/districts/{self.district_id}"
        district = self._get(path).get("data")
        if not isinstance(district, dict):
            raise CleverContractError(self.district_id, f"GET {path}", "the district is not a JSON object")
        return district

    def iter_schools(self) -> Iterator[dict]:
        return self._roster("schools")

    def iter_students(self) -> Iterator[dict]:
        return self._roster("users", role="student")

    def iter_sections(self) -> Iterator[dict]:
        return self._roster("sections")

    def iter_courses(self) -> Iterator[dict]:
        return self._roster("courses")

    def iter_attendance(self, school_id: str, start_date: date, end_date: date,
                        status: str | None = None) -> Iterator[dict]:
        """A school's attendance records for a window, both dates inclusive, known fields only."""
        params = {"date_range_start": start_date.isoformat(), "date_range_end": end_date.isoformat()}
        if status:
            params["attendance_status"] = status
        pages = records = 0
        for page in self._pages(f"{API}/attendance/schools/{school_id}", params, ATTENDANCE_LIMIT):
            pages += 1
            records += len(page)
            for raw in page:
                yield self._known_fields(raw)
        self.stats.add(records=records)
        self.log.info("Clever district %s school %s: %d pages, %d records", self.district_id, school_id,
                      pages, records)

    def _known_fields(self, raw: object) -> dict:
        raw = raw if isinstance(raw, dict) else {}  # not an object: every field missing, so it is rejected
        record = {name: raw.get(name) for name in REQUIRED}
        record.update({name: raw[name] for name in OPTIONAL if raw.get(name) is not None})
        if any(record[name] is None for name in REQUIRED):
            self.stats.add(missing_required=1)  # passed on: the transform rejects it with its reason
        return record

    def iter_district_attendance(self, school_ids: Iterable[str], start_date: date,
                                 end_date: date) -> Iterator[list[dict]]:
        """Each school's records, in the order given, read `max_concurrency` schools at a time."""
        self.get_conn()
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="clever") as pool:
            yield from pool.map(lambda s: list(self.iter_attendance(s, start_date, end_date)), school_ids)

    def log_totals(self) -> None:
        s = self.stats
        self.log.info("Clever district %s: %d requests, %d retries, %d rate-limited (429), %.1fs waiting",
                      self.district_id, s.requests, s.retries, s.throttled, s.waited_seconds)


def _objects(items: list) -> list[dict]:
    return [item for item in items if isinstance(item, dict)]


def _with_limit(uri: str, limit: int) -> str:
    parts = urlsplit(uri)
    query = dict(parse_qsl(parts.query))
    query["limit"] = str(limit)
    return f"{parts.path}?{urlencode(query)}"


def _message(answer: requests.Response) -> str:
    """Clever's own error message, short and printable; an HTML body (wrong token type) is named, not quoted."""
    try:
        body = answer.json()
    except ValueError:
        return "non-JSON body" + (" (HTML)" if "html" in answer.headers.get("content-type", "") else "")
    message = body.get("message") if isinstance(body, dict) else None
    # it lands in logs and failure notices: no line breaks, escapes or lone surrogates from Clever
    return re.sub(r"[^\x20-\x7e]", "?", message[:200]) if isinstance(message, str) else ""
