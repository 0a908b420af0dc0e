"""Clever's last_attendance_sync of many districts at once, and the watcher that fires when one moves, over HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from clever_attendance.errors import CleverAuthError
from clever_attendance.sandbox.process import move_clock
from clever_attendance.sandbox.testing import NOW
from clever_attendance.triggers.clever import CleverSyncTrigger

FRIDAY_LAST_UPLOAD = {"springfield": "2026-11-20T21:45:00Z", "shelbyville": "2026-11-20T22:45:00Z"}


def test_every_districts_sync_is_read_at_once_with_its_own_token(sandbox, clever_conn):
    from airflow.sdk import BaseHook

    from clever_attendance.hooks.clever_sync import read_syncs

    conn_id = clever_conn(sandbox)
    districts = {slug: (sandbox["districts"][slug], conn_id) for slug in ("springfield", "shelbyville")}
    districts["gone"] = ("000000000000000000000000", conn_id)  # the app is not shared with it
    answers = asyncio.run(read_syncs({conn_id: BaseHook.get_connection(conn_id)}, districts))
    assert {slug: answers[slug] for slug in FRIDAY_LAST_UPLOAD} == FRIDAY_LAST_UPLOAD
    assert isinstance(answers["gone"], CleverAuthError), "one broken district does not hide the others"
    assert "Clever has no token" in str(answers["gone"])


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
