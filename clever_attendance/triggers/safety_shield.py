"""SafetyShieldImportTrigger: waits in the triggerer, not a worker slot, while Safety Shield imports the parts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from clever_attendance.errors import SafetyShieldError
from clever_attendance.hooks.safety_shield import FINAL, SafetyShieldHook, import_summary


class SafetyShieldImportTrigger(BaseTrigger):
    """Polls the imports of `upload_ids` until each is completed or failed, or until `deadline` (Unix seconds).

    Yields one event: `{"status": "done", "results": [...]}` (each import in brief, never row-level messages),
    `{"status": "timeout", "pending": {upload id: status}}`, or `{"status": "error", ...}` naming the
    Safety Shield error class, which the operator raises again so that the retry policy decides. Every event
    carries `started` back (when the upload step began, Unix seconds), so that the step is timed whole:
    `airflow dags test` passes a resumed task the event alone, not the deferral's kwargs.
    """

    def __init__(self, upload_ids: list[str], district: str, safety_shield_conn_id: str, deadline: float,
                 started: float) -> None:
        super().__init__()
        self.upload_ids, self.district = upload_ids, district
        self.safety_shield_conn_id, self.deadline, self.started = safety_shield_conn_id, deadline, started

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"upload_ids": self.upload_ids, "district": self.district,
                 "safety_shield_conn_id": self.safety_shield_conn_id, "deadline": self.deadline,
                 "started": self.started})

    def _event(self, status: str, **payload: Any) -> TriggerEvent:
        return TriggerEvent({"status": status, "started": self.started, **payload})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = SafetyShieldHook(self.district, self.safety_shield_conn_id)
        results: dict[str, dict] = {}
        try:
            await hook.aget_conn()
            while True:
                for upload_id in [u for u in self.upload_ids if u not in results]:
                    # the hook's requests and its retries run in a thread: the event loop never blocks
                    result = await asyncio.to_thread(hook.get_import, upload_id)
                    if result["status"] in FINAL:
                        results[upload_id] = import_summary(result)
                pending = [u for u in self.upload_ids if u not in results]
                if not pending:
                    yield self._event("done", results=[results[u] for u in self.upload_ids])
                    return
                if time.time() > self.deadline:
                    yield self._event("timeout", pending=pending)
                    return
                await asyncio.sleep(hook.poll_seconds)
        except SafetyShieldError as error:
            yield self._event("error", error=type(error).__name__, step=error.step, detail=error.detail)
