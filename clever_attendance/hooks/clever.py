"""CleverHook: one district's roster and attendance from Clever's API v3.1, as plain dicts."""

from __future__ import annotations

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

from clever_attendance.errors import CleverAuthError, CleverContractError, CleverError
from clever_attendance.hooks.clever_tokens import district_tokens, token_list_request, token_of
from clever_attendance.hooks.connection import base_url
from clever_attendance.hooks.ratelimit import RateLimiter
from clever_attendance.pipeline.columns import CLEVER_OPTIONAL as OPTIONAL
from clever_attendance.pipeline.columns import CLEVER_REQUIRED as REQUIRED
from clever_attendance.provider import read_extras, ui_field_behaviour
from clever_attendance.retry_policy import NETWORK_ERRORS, CleverAnswer, CleverCall, InHook, clever_action
from clever_attendance.settings import CLEVER_CONN_ID, CLEVER_CONN_TYPE

API = "/v3.1"
ROSTER_LIMIT = 10_000
ATTENDANCE_LIMIT = 1_000
# a link the hook may follow: a path on the API host, in URL characters only (no `//host`, no backslash,
# no whitespace); the district's token goes with it
LINK_PATH = re.compile(r"/(?!/)[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]{0,4096}")


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
            tokens = district_tokens(self._token_list(self.district_id), self.district_id)
            self._token = token_of(tokens, self.district_id)
            return self._token

    def _token_list(self, district: str | None = None) -> CleverAnswer | Exception:
        """Clever's answer to the list of the app's district tokens (only `district`'s when given), or the
        network error that stopped it."""
        try:
            answer = self.get_conn().get(**token_list_request(self.oauth_url, self.client_id, self.secret, district),
                                         timeout=self.timeout)
        except NETWORK_ERRORS as exc:
            return exc
        return CleverAnswer.read(answer.status_code, answer.headers, answer.content)

    def test_connection(self) -> tuple[bool, str]:
        """One cheap real call, for the Connections form's Test button; the answer never holds a secret."""
        try:
            self.get_conn()
            if not self.client_id:  # a district token: the districts it sees
                seen = [item["data"].get("name") for item in self._get(f"{API}/districts").get("data", [])]
                return True, f"Clever accepted the district token: it sees {', '.join(map(str, seen)) or 'no district'}"
            answer = self._token_list()
            if isinstance(answer, Exception):
                return False, f"Clever did not answer at {self.oauth_url}: {type(answer).__name__}"
            if answer.status != 200:
                return False, (f"Clever refused the app's client id and secret (HTTP {answer.status}) "
                               f"at {self.oauth_url}/oauth/tokens")
            shared = len(district_tokens(answer, self.district_id))
        except CleverError as error:
            return False, (f"Clever connection {self.clever_conn_id!r}: {error.category} during {error.step}: "
                           f"{error.detail}")
        return True, f"Clever accepted the app's client id and secret: {shared} district(s) share data with the app"

    # one request ---------------------------------------------------------------------------

    def _get(self, path_and_query: str, limit: int | None = None) -> dict:
        """GET one JSON object (a page of `limit` items, when given): rate-limited, each answer done as
        `clever_action` says."""
        session = self.get_conn()
        call = CleverCall(self.district_id, "GET " + urlsplit(path_and_query).path, self.max_retries,
                          self.backoff, can_refresh=bool(self.client_id), limit=limit)
        while True:
            self.stats.add(waited_seconds=self.limiter.acquire(), requests=1)
            token = self._district_token()
            try:
                response = session.get(self.base_url + path_and_query, timeout=self.timeout,
                                       headers={"Authorization": f"Bearer {token}"})
            except NETWORK_ERRORS as exc:
                answer: CleverAnswer | Exception = exc
            else:
                self.limiter.observe(response.headers)
                answer = CleverAnswer.read(response.status_code, response.headers, response.content)
            action = clever_action(call, answer, time.time())
            call = action.call
            if action.do is InHook.READ:
                return action.body
            if action.do is InHook.RAISE:
                raise action.error
            if action.do is InHook.SMALLER_PAGE:
                raise _LimitTooLargeError
            if action.do is InHook.WAIT:  # every thread of the hook waits: they share the token
                self.limiter.pause_until(time.time() + action.seconds)
                self.stats.add(throttled=1)
            elif action.do is InHook.REFRESH_TOKEN:
                self.log.info("Clever district %s: token refused, looking it up again", self.district_id)
                self._district_token(refresh=True)
            else:  # BACKOFF
                self.log.warning("Clever district %s: %s on %s; retry %d in %.1fs", self.district_id, action.why,
                                 call.step, call.failures, action.seconds)
                self.stats.add(retries=1, waited_seconds=action.seconds)
                time.sleep(action.seconds)

    # listings -------------------------------------------------------------------------------

    def _pages(self, path: str, params: dict[str, Any], limit: int) -> Iterator[list]:
        """Every page's `data`, following the `next` links (on the API host only); 413 halves the limit."""
        uri = f"{path}?{urlencode({**params, 'limit': limit})}"
        while True:
            try:
                body = self._get(uri, limit)
            except _LimitTooLargeError:
                limit //= 2
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
