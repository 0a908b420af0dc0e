"""SafetyShieldImportTrigger: waits in the triggerer, not a worker slot, while Safety Shield imports the parts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from clever_attendance.contracts import Import, plain
from clever_attendance.errors import SafetyShieldError, SafetyShieldRefusedError, SafetyShieldUnavailableError
from clever_attendance.hooks.safety_shield import FINAL, SafetyShieldHook, import_summary


class Outcome(StrEnum):
    """How the wait for Safety Shield's imports ended."""

    DONE = "done"  # every import completed or failed: the operator checks them
    TIMEOUT = "timeout"  # some were still importing at the deadline
    REFUSED = "refused"  # Safety Shield refused a status request (SafetyShieldRefusedError)
    UNAVAILABLE = "unavailable"  # Safety Shield kept failing past the hook's retries (SafetyShieldUnavailableError)


RAISED = {Outcome.REFUSED: SafetyShieldRefusedError, Outcome.UNAVAILABLE: SafetyShieldUnavailableError}


@dataclass(frozen=True)
class ImportsEnded:
    """The trigger's one event, as the resumed operator reads it. `started` (when the upload step began, Unix seconds)
    comes back so that the step is timed whole: `airflow dags test` passes a resumed task the event alone."""

    outcome: Outcome
    started: float
    results: tuple[Import, ...] = ()  # DONE: each import in brief, never row-level messages
    pending: tuple[str, ...] = ()  # TIMEOUT: the uploads not finished
    step: str = ""  # REFUSED, UNAVAILABLE: where it failed, and how
    detail: str = ""

    @classmethod
    def failed(cls, error: SafetyShieldError, started: float) -> ImportsEnded:
        outcome = Outcome.REFUSED if isinstance(error, SafetyShieldRefusedError) else Outcome.UNAVAILABLE
        return cls(outcome, started, step=error.step, detail=error.detail)

    def error(self, district: str) -> SafetyShieldError | None:
        """The failure to raise again, of the class the trigger caught, so that the retry policy decides."""
        raised = RAISED.get(self.outcome)
        return raised(district, self.step, self.detail) if raised else None

    def to_event(self) -> TriggerEvent:
        return TriggerEvent(plain(self))

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ImportsEnded:
        return cls(**{**event, "outcome": Outcome(event["outcome"]), "pending": tuple(event["pending"]),
                      "results": tuple(Import(**result) for result in event["results"])})


class SafetyShieldImportTrigger(BaseTrigger):
    """Polls the imports of `upload_ids` until each is completed or failed, or until `deadline` (Unix seconds), and
    yields one event: `ImportsEnded`."""

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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = SafetyShieldHook(self.district, self.safety_shield_conn_id)
        results: dict[str, Import] = {}
        try:
            await hook.aget_conn()
            while True:
                for upload_id in [u for u in self.upload_ids if u not in results]:
                    # the hook's requests and its retries run in a thread: the event loop never blocks
                    result = await asyncio.to_thread(hook.get_import, upload_id)
                    if result["status"] in FINAL:
                        results[upload_id] = import_summary(result)
                pending = tuple(u for u in self.upload_ids if u not in results)
                if not pending:
                    done = tuple(results[u] for u in self.upload_ids)
                    yield ImportsEnded(Outcome.DONE, self.started, done).to_event()
                    return
                if time.time() > self.deadline:
                    yield ImportsEnded(Outcome.TIMEOUT, self.started, pending=pending).to_event()
                    return
                await asyncio.sleep(hook.poll_seconds)
        except SafetyShieldError as error:
            yield ImportsEnded.failed(error, self.started).to_event()
