"""The asynchronous Clever client: last_attendance_sync of many districts at once, answered as CleverHook answers,
and the watcher that fires when one moves, over HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import requests

from clever_attendance.errors import CleverAuthError, CleverContractError
from clever_attendance.hooks.clever import CleverHook
from clever_attendance.triggers.clever import CleverSyncTrigger
from clever_attendance_sandbox.process import move_clock, set_faults
from clever_attendance_sandbox.testing import NOW

FRIDAY_LAST_UPLOAD = {"springfield": "2026-11-20T21:45:00Z", "shelbyville": "2026-11-20T22:45:00Z"}


def test_every_districts_sync_is_read_at_once_with_its_own_token(sandbox, clever_conn):
    from airflow.sdk import BaseHook

    from clever_attendance.hooks.clever_async import read_syncs

    conn_id = clever_conn(sandbox)
    districts = {slug: (sandbox["districts"][slug], conn_id) for slug in ("springfield", "shelbyville")}
    districts["gone"] = ("000000000000000000000000", conn_id)  # the app is not shared with it
    answers = asyncio.run(read_syncs({conn_id: BaseHook.get_connection(conn_id)}, districts))
    assert {slug: answers[slug] for slug in FRIDAY_LAST_UPLOAD} == FRIDAY_LAST_UPLOAD
    assert isinstance(answers["gone"], CleverAuthError), "one broken district does not hide the others"
    assert "Clever has no token" in str(answers["gone"])


def test_both_clients_treat_a_200_that_is_not_json_alike(sandbox, districts, clever_conn):
    """Backed off like a body cut short, within max_retries, then a contract error: the same in both."""
    from airflow.sdk import BaseHook

    from clever_attendance.hooks.clever_async import read_syncs

    conn_id = clever_conn(sandbox, max_retries=2)
    district = districts["tiny"].id

    def hook() -> object:
        return CleverHook(district, conn_id).get_district()["last_attendance_sync"]

    def reader() -> object:
        connections = {conn_id: BaseHook.get_connection(conn_id)}
        return asyncio.run(read_syncs(connections, {"tiny": (district, conn_id)}))["tiny"]

    def tried(read) -> tuple[object, int]:
        """What a client made of the district (its sync or its error), and how many reads Clever served it."""
        requests.delete(sandbox["clever_url"] + "/admin/stats", timeout=10).raise_for_status()
        try:
            outcome = read()
        except CleverContractError as error:
            outcome = error
        return outcome, requests.get(sandbox["clever_url"] + "/admin/stats", timeout=10).json()["district_reads"]

    set_faults(sandbox, "clever", invalid_json_rate=1.0)
    (by_hook, hook_reads), (by_reader, reader_reads) = tried(hook), tried(reader)
    assert type(by_hook) is type(by_reader) is CleverContractError
    assert str(by_hook) == str(by_reader) == (f"Clever contract broken for district {district} during "
                                              f"GET /v3.1/districts/{district}: the answer is not JSON")
    assert hook_reads == reader_reads == 3, "max_retries=2: three tries each"
    set_faults(sandbox, "clever")
    (synced, _), (also, _) = tried(hook), tried(reader)
    assert synced == also and isinstance(synced, str)


@pytest.mark.timeout(120)
def test_the_watcher_fires_once_naming_only_the_district_whose_sync_moved(sandbox, clever_conn):
    conn_id = clever_conn(sandbox)
    watched = [[slug, sandbox["districts"][slug], conn_id] for slug in ("shelbyville", "springfield")]
    trigger = CleverSyncTrigger(watched, interval=0.2)
    assert CleverSyncTrigger(**trigger.serialize()[1]).serialize() == trigger.serialize(), "what the triggerer stores"

    async def watch() -> dict:
        events = trigger.run()
        first = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(1)  # several readings: the first is the baseline, and nothing moved since
        assert not first.done(), "nothing fires while no sync moves"
        await asyncio.to_thread(move_clock, sandbox, datetime(2026, 11, 23, 15, 0, tzinfo=UTC),
                                sandbox["districts"]["springfield"])
        event = await asyncio.wait_for(first, 30)
        await events.aclose()
        return event.payload

    try:
        assert asyncio.run(watch()) == {"districts": {"springfield": "2026-11-23T14:30:00Z"}}
    finally:
        move_clock(sandbox, NOW)
