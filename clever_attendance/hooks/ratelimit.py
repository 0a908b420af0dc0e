"""A rate limiter per token, shared by threads, that keeps under Clever's fixed-window limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping


def _numbers(value: str | None) -> list[float]:
    """Clever's X-RateLimit values, one or several comma-separated buckets."""
    if not value:
        return []
    out = []
    for part in value.split(","):
        try:
            out.append(float(part.strip()))
        except ValueError:
            continue
    return out


class RateLimiter:
    """Spaces requests at `per_minute`, and waits for the reset when Clever says little is left.

    A token bucket: slots left unused while every thread waits on Clever are kept, up to `burst`,
    so any fixed one-minute window sees at most `per_minute + burst` requests. The headers guard
    against other clients spending the same token (another DAG run, another app).
    """

    def __init__(self, per_minute: float, burst: int = 4, reserve: int = 4) -> None:
        self.interval = 60.0 / per_minute
        self.burst = burst
        self.reserve = reserve
        self._next = time.monotonic()
        self._remaining: float | None = None
        self._reset: float | None = None  # Unix seconds, as Clever sends it
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until this request may go; returns the seconds waited."""
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now - self.burst * self.interval)
            if self._remaining is not None and self._remaining <= self.reserve and self._reset:
                slot = max(slot, now + max(0.0, self._reset - time.time()))
                self._remaining = None  # the next answer tells us where the new window stands
            elif self._remaining is not None:
                self._remaining -= 1
            self._next = slot + self.interval
        wait = max(0.0, slot - now)
        if wait:
            time.sleep(wait)
        return wait

    def observe(self, headers: Mapping[str, str]) -> None:
        """Track the tightest bucket Clever reports."""
        tight = tightest(headers)
        if tight is None:
            return
        remaining, reset = tight
        with self._lock:
            if self._reset is None or reset > self._reset:
                self._reset, self._remaining = reset, remaining
            elif self._remaining is None or remaining < self._remaining:
                self._remaining = remaining

    def pause_until(self, unix_seconds: float) -> None:
        """After a 429: nobody sends before `unix_seconds`."""
        with self._lock:
            self._next = max(self._next, time.monotonic() + max(0.0, unix_seconds - time.time()))
            self._remaining = None


def tightest(headers: Mapping[str, str]) -> tuple[float, float] | None:
    """(smallest remaining, when it resets): the bucket that runs out first.

    With one value per bucket in both headers the reset is that bucket's own; when the lists do
    not pair up, the latest reset, which is never too early.
    """
    remaining = _numbers(headers.get("X-RateLimit-Remaining"))
    reset = _numbers(headers.get("X-RateLimit-Reset"))
    if not remaining or not reset:
        return None
    low = min(remaining)
    if len(remaining) == len(reset):
        return low, max(r for n, r in zip(remaining, reset, strict=True) if n == low)
    return low, max(reset)


def retry_at(headers: Mapping[str, str], now: float) -> float:
    """When a 429 says to come back: Retry-After if present, else the exhausted bucket's reset."""
    retry_after = _numbers(headers.get("Retry-After"))
    if retry_after:
        return now + retry_after[0]
    tight = tightest(headers)
    return tight[1] if tight else now + 1.0
