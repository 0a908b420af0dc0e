"""The asynchronous Clever client that reads `last_attendance_sync` of many districts: one request per district.

What a poll with nothing new costs, and what the watcher in the triggerer asks every minute, so it runs
on one event loop (the triggerer's, or `asyncio.run` in the check task) and never holds a thread per
district. It answers as `CleverHook` does: the same retry policy (`retry_policy.clever_action`) and the
same token lookup (`hooks.clever_tokens`), over httpx instead of requests.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
from airflow.sdk import Connection

from clever_attendance.errors import CleverContractError, CleverError
from clever_attendance.hooks.clever_tokens import district_tokens, token_list_request, token_of
from clever_attendance.hooks.connection import base_url
from clever_attendance.provider import read_extras
from clever_attendance.retry_policy import CleverAnswer, CleverCall, InHook, clever_action
from clever_attendance.settings import CHECK_CONCURRENCY, CLEVER_CONN_TYPE

log = logging.getLogger(__name__)
TRANSIENT = (httpx.TransportError,)  # refused, reset, timed out, cut short: httpx's NETWORK_ERRORS


class LastSyncReader:
    """The districts of one Clever connection: each read with its own token, `CHECK_CONCURRENCY` at a time.

    With the app's client id and secret, every district's token comes from one request for the app's
    token list; with a district token in the password, that token serves every district. A district
    whose answer stays wrong maps to its CleverError: one broken district never hides the others.
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
        self._tokens: dict[str, object] | None = None
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
                self._tokens = district_tokens(await self._token_list(), district_id)
        return token_of(self._tokens, district_id)

    async def _token_list(self) -> CleverAnswer | Exception:
        """Clever's answer to the list of all the app's district tokens, or the network error that stopped it."""
        try:
            answer = await self.client.get(**token_list_request(self.oauth_url, self.client_id, self.secret))
        except TRANSIENT as exc:
            return exc
        return CleverAnswer.read(answer.status_code, answer.headers, answer.content)

    async def _sync(self, district_id: str) -> str | None:
        path = f"/v3.1/districts/{district_id}"
        call = CleverCall(district_id, f"GET {path}", self.max_retries, self.backoff,
                          can_refresh=bool(self.client_id))
        token = await self._token(district_id)
        while True:
            try:
                response = await self.client.get(self.base_url + path, headers={"Authorization": f"Bearer {token}"})
            except TRANSIENT as exc:
                answer: CleverAnswer | Exception = exc
            else:
                answer = CleverAnswer.read(response.status_code, response.headers, response.content)
            action = clever_action(call, answer, time.time())
            call = action.call
            if action.do is InHook.READ:
                district = action.body.get("data")
                if not isinstance(district, dict):
                    raise CleverContractError(district_id, call.step, "the district is not a JSON object")
                return district.get("last_attendance_sync")
            if action.do is InHook.RAISE:
                raise action.error
            if action.do is InHook.REFRESH_TOKEN:
                token = await self._token(district_id, stale=token)
                continue
            if action.do is InHook.BACKOFF:
                log.warning("Clever district %s: %s on %s; retry %d in %.1fs", district_id, action.why, call.step,
                            call.failures, action.seconds)
            await asyncio.sleep(action.seconds)  # WAIT or BACKOFF: a read of one district is never SMALLER_PAGE


async def read_syncs(connections: dict[str, Connection], districts: dict[str, tuple[str, str]]
                     ) -> dict[str, str | None | CleverError]:
    """`last_attendance_sync` per district slug; `districts` maps a slug to (Clever district id, connection id)."""
    by_conn: dict[str, list[str]] = {}
    for slug, (_, conn_id) in districts.items():
        by_conn.setdefault(conn_id, []).append(slug)
    readers = {conn_id: LastSyncReader(connections[conn_id]) for conn_id in by_conn}
    try:
        answers = await asyncio.gather(*(readers[c].read([districts[s][0] for s in slugs])
                                         for c, slugs in by_conn.items()))
    finally:
        await asyncio.gather(*(reader.aclose() for reader in readers.values()))
    out: dict[str, str | None | CleverError] = {}
    for slugs, answer in zip(by_conn.values(), answers, strict=True):
        out.update({slug: answer[districts[slug][0]] for slug in slugs})
    return out
