"""Fault injection shared by both stand-ins: deterministic per request under a seed."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading

from pydantic import BaseModel, Field


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
