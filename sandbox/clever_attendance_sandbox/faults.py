"""Fault injection shared by both stand-ins: deterministic per request under a seed."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field


class FeedBreak(BaseModel):
    """A district's SFTP feed broken for one school and date, as Clever then serves it (and the ground truth
    then holds): every student absent, the school missing, or only a share of its records."""

    district: str = Field(description="Clever district id")
    school: str = Field(description="Clever school id")
    date: date
    kind: Literal["all_absent", "missing", "partial"]
    share: float = Field(0.3, ge=0, le=1, description="partial: the share of the school's records kept")

    def apply(self, records: list[dict]) -> list[dict]:
        if self.kind == "missing":
            return []
        if self.kind == "partial":
            return records[:round(len(records) * self.share)]
        return [{**{k: v for k, v in r.items() if k != "excuse_code"}, "attendance_status": "absent"}
                for r in records]


class CleverFaults(BaseModel):
    """What the Clever stand-in gets wrong, and how often. All off by default."""

    seed: int = 0
    error_rate: float = Field(0.0, ge=0, le=1, description="share of 500/502/503 answers")
    latency_ms: float = Field(0.0, ge=0)
    jitter_ms: float = Field(0.0, ge=0)
    burst_429_every: int = Field(0, ge=0, description="every Nth request starts a burst of 429s")
    burst_429_length: int = Field(3, ge=1)
    cut_rate: float = Field(0.0, ge=0, le=1, description="share of bodies cut mid-way")
    invalid_json_rate: float = Field(0.0, ge=0, le=1)
    drift: bool = Field(False, description="unknown fields added, optional fields left out")
    missing_required_rate: float = Field(0.0, ge=0, le=1, description="records without a status")
    roster_max_limit: int = Field(10_000, ge=1, description="roster lists answer 413 above this limit")
    rate_limit: int = Field(1200, ge=1, description="requests per window per token")
    rate_window: float = Field(60.0, gt=0, description="seconds of the fixed rate-limit window")
    feed_breaks: list[FeedBreak] = Field(default_factory=list, description="broken feeds: data, not transport")


class UploadFaults(BaseModel):
    """What the Safety Shield stand-in gets wrong, and how often. All off by default."""

    seed: int = 0
    throttle_rate: float = Field(0.0, ge=0, le=1, description="share of 429/503 with Retry-After")
    retry_after: int = Field(1, ge=0)
    error_rate: float = Field(0.0, ge=0, le=1, description="share of plain 500 answers")
    import_seconds: float = Field(0.0, ge=0, description="time an import spends processing")
    max_bytes: int = Field(25_000_000, ge=1)
    max_rows: int = Field(200_000, ge=1)


class Dice:
    """One seeded random stream per request number, so a run of requests is reproducible."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def roll(self, seed: int) -> tuple[int, random.Random]:
        with self._lock:
            n = next(self._numbers)
        return n, random.Random(f"{seed}:{n}")


async def delay(faults: CleverFaults, rng: random.Random) -> None:
    seconds = (faults.latency_ms + rng.uniform(0, faults.jitter_ms)) / 1000
    if seconds:
        await asyncio.sleep(seconds)
