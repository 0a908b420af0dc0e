"""Clever's `last_attendance_sync` of many districts at once: one asynchronous request per district.

What a poll with nothing new costs, and what the watcher in the triggerer asks every minute, so it runs
on one event loop (the triggerer's, or `asyncio.run` in the check task) and never holds a thread per
district.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
from airflow.sdk import Connection

from clever_attendance.errors import CleverAuthError, CleverContractError, CleverError, CleverUnavailableError
from clever_attendance.hooks.connection import base_url
from clever_attendance.hooks.ratelimit import retry_at
from clever_attendance.provider import read_extras
from clever_attendance.retry_policy import MAX_429_WAITS, InHook, backoff_seconds, clever_answer
from clever_attendance.settings import CHECK_CONCURRENCY, CLEVER_CONN_TYPE

log = logging.getLogger(__name__)
TRANSIENT = (httpx.TransportError,)  # refused, reset, timed out: backed off like the hook's NETWORK_ERRORS


class SyncReader:
    """The districts of one Clever connection: each read with its own token, `CHECK_CONCURRENCY` at a time.

    With the app's client id and secret, every district's token comes from one request for the app's
    token list; with a district token in the password, that token serves every district. A 429 waits as
    Clever says, a network fault or 5xx backs off (the connection's `max_retries`), a 401 looks the tokens
    up again once. A district whose answer stays wrong maps to its CleverError: one broken district never
    hides the others.
    """

    def __init__(self, conn: Connection) -> None:
        extra = read_extras(CLEVER_CONN_TYPE, conn.extra_dejson)
        self.conn_id = conn.conn_id
        self.base_url = base_url(conn, "https://api.clever.com")
        self.oauth_url = extra["oauth_url"].rstrip("/")
        self.client_id, self.secret = conn.login, conn.password
        self.max_retries, self.backoff = extra["max_retries"], extra["backoff_seconds"]
        self.client = httpx.AsyncClient(timeout=extra["timeout"], verify=extra["verify"],
                                        limits=httpx.Limits(max_connections=CHECK_CONCURRENCY))
        self._tokens: dict[str, str] | None = None
        self._token_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def read(self, district_ids: list[str]) -> dict[str, str | None | CleverError]:
        """Each district's `last_attendance_sync` (None when it has never synced), or the error that stopped it."""
        gate = asyncio.Semaphore(CHECK_CONCURRENCY)

        async def one(district_id: str) -> str | None | CleverError:
            async with gate:
                try:
                    return await self._sync(district_id)
                except CleverError as error:
                    return error

        answers = await asyncio.gather(*(one(d) for d in district_ids))
        return dict(zip(district_ids, answers, strict=True))

    async def _token(self, district_id: str, stale: str | None = None) -> str:
        if not self.client_id:
            return self.secret  # a district token, held directly
        async with self._token_lock:
            if self._tokens is None or (stale and self._tokens.get(district_id) == stale):
                self._tokens = await self._token_list(district_id)
        if district_id not in self._tokens:
            raise CleverAuthError(district_id, "looking up the district token",
                                  "Clever has no token: is the app shared with the district?")
        return self._tokens[district_id]

    async def _token_list(self, district_id: str) -> dict[str, str]:
        step = "looking up the district tokens"
        try:
            answer = await self.client.get(f"{self.oauth_url}/oauth/tokens", params={"owner_type": "district"},
                                           auth=(self.client_id, self.secret))
        except TRANSIENT as exc:
            raise CleverUnavailableError(district_id, step, type(exc).__name__) from None
        if answer.status_code in (401, 403):
            raise CleverAuthError(district_id, step, f"HTTP {answer.status_code}: app credentials refused")
        if answer.status_code != 200:
            raise CleverUnavailableError(district_id, step, f"HTTP {answer.status_code}")
        return {t["owner"]["id"]: t["access_token"] for t in answer.json().get("data", [])
                if t.get("owner", {}).get("type") == "district"}

    async def _sync(self, district_id: str) -> str | None:
        step = f"GET /v3.1/districts/{district_id}"
        token = await self._token(district_id)
        refreshed, failures, throttles = False, 0, 0
        while True:
            try:
                answer = await self.client.get(f"{self.base_url}/v3.1/districts/{district_id}",
                                               headers={"Authorization": f"Bearer {token}"})
            except TRANSIENT as exc:
                failures = await self._backoff(district_id, failures, step, type(exc).__name__)
                continue
            status = answer.status_code
            if status == 200:
                try:
                    return answer.json()["data"].get("last_attendance_sync")
                except (ValueError, KeyError, AttributeError):
                    raise CleverContractError(district_id, step, "the answer is not a district") from None
            action = clever_answer(status)
            if action is InHook.WAIT and throttles < MAX_429_WAITS:
                throttles += 1
                await asyncio.sleep(max(0.0, retry_at(answer.headers, time.time()) - time.time()))
            elif action is InHook.REFRESH_TOKEN and not refreshed and self.client_id:
                token, refreshed = await self._token(district_id, stale=token), True
            elif action is InHook.BACKOFF:
                failures = await self._backoff(district_id, failures, step, f"HTTP {status}")
            elif status in (401, 403):
                raise CleverAuthError(district_id, step, f"HTTP {status}: token refused")
            elif status == 429:
                raise CleverUnavailableError(district_id, step, f"still rate-limited after {MAX_429_WAITS} waits")
            else:
                raise CleverContractError(district_id, step, f"HTTP {status}")

    async def _backoff(self, district_id: str, failures: int, step: str, why: str) -> int:
        if failures >= self.max_retries:
            raise CleverUnavailableError(district_id, step, f"{why}, {failures + 1} attempts")
        await asyncio.sleep(backoff_seconds(self.backoff, failures))
        return failures + 1


async def read_syncs(connections: dict[str, Connection], districts: dict[str, tuple[str, str]]
                     ) -> dict[str, str | None | CleverError]:
    """`last_attendance_sync` per district slug; `districts` maps a slug to (Clever district id, connection id)."""
    by_conn: dict[str, list[str]] = {}
    for slug, (_, conn_id) in districts.items():
        by_conn.setdefault(conn_id, []).append(slug)
    readers = {conn_id: SyncReader(connections[conn_id]) for conn_id in by_conn}
    try:
        answers = await asyncio.gather(*(readers[c].read([districts[s][0] for s in slugs])
                                         for c, slugs in by_conn.items()))
    finally:
        await asyncio.gather(*(reader.aclose() for reader in readers.values()))
    out: dict[str, str | None | CleverError] = {}
    for slugs, answer in zip(by_conn.values(), answers, strict=True):
        out.update({slug: answer[districts[slug][0]] for slug in slugs})
    return out
