"""CleverSyncTrigger: the watcher of Clever's `last_attendance_sync`, in the triggerer, for event-driven runs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseHook
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from clever_attendance.errors import CleverError
from clever_attendance.hooks.clever_async import read_syncs

log = logging.getLogger(__name__)


class CleverSyncTrigger(BaseEventTrigger):
    """Every `interval` seconds, reads each watched district's `last_attendance_sync` (one request each,
    asynchronous) and fires one event naming every district whose sync moved, with its new sync.

    `districts` is a list of [slug, Clever district id, Clever connection id]. The first reading after the
    triggerer starts is the baseline and fires nothing: a sync that moved while no triggerer watched is the
    polling DAG's to find. A district whose reading fails keeps its last known sync and is logged.
    """

    def __init__(self, districts: list[list[str]], interval: float = 60.0) -> None:
        super().__init__()
        self.districts = [list(d) for d in districts]
        self.interval = float(interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__name__}", {"districts": self.districts,
                                                                  "interval": self.interval}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watched = {slug: (district_id, conn_id) for slug, district_id, conn_id in self.districts}
        seen: dict[str, str] = {}
        while True:
            started = time.monotonic()
            moved = await self._moved(watched, seen)
            if moved:
                log.info("Clever last_attendance_sync moved for %d district(s): %s", len(moved), ", ".join(moved))
                yield TriggerEvent({"districts": moved})
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def _moved(self, watched: dict[str, tuple[str, str]], seen: dict[str, str]) -> dict[str, str]:
        """Districts whose sync differs from the one `seen` last time (which this updates)."""
        try:  # read every time: rotated credentials are picked up at the next reading
            connections = {c: await BaseHook.aget_connection(c) for c in sorted({c for _, c in watched.values()})}
            answers = await read_syncs(connections, watched)
        except Exception as error:  # noqa: BLE001 - the watcher outlives any one failed reading
            log.warning("Clever watcher: this reading failed (%s: %s); trying again in %.0fs",
                        type(error).__name__, error, self.interval)
            return {}
        moved = {}
        for slug, answer in answers.items():
            if isinstance(answer, CleverError):
                log.warning("Clever watcher: district %s: %s", slug, answer)
            elif answer:
                if slug in seen and seen[slug] != answer:
                    moved[slug] = answer
                seen[slug] = answer
        return moved
