"""The rate limiter and the 429 rules, without a server: Clever's headers as docs/clever-api.md describes them."""

from __future__ import annotations

import time

from clever_attendance.hooks.ratelimit import RateLimiter, retry_at, tightest


def test_the_tightest_bucket_wins_and_unpaired_lists_take_the_latest_reset():
    assert tightest({"X-RateLimit-Remaining": "5, 100", "X-RateLimit-Reset": "1700000060, 1700000120"}) == \
        (5.0, 1700000060.0)
    assert tightest({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "1700000060, 1700000120"}) == \
        (5.0, 1700000120.0)
    assert tightest({}) is None


def test_a_429_waits_for_retry_after_else_for_the_reset():
    assert retry_at({"Retry-After": "7"}, 1000.0) == 1007.0
    assert retry_at({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1060"}, 1000.0) == 1060.0
    assert retry_at({}, 1000.0) == 1001.0


def test_requests_are_spaced_at_the_rate_after_the_burst():
    limiter = RateLimiter(per_minute=600, burst=2, reserve=0)  # one request per 0.1 s
    waits = [limiter.acquire() for _ in range(5)]
    assert waits[:1] == [0.0], "the first request goes at once"
    assert sum(waits) >= 0.25, "five requests at 10/s after a burst of two take at least 0.3 s of waiting, less jitter"


def test_little_left_in_the_window_waits_for_its_reset():
    limiter = RateLimiter(per_minute=60_000, burst=1, reserve=3)
    limiter.observe({"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": str(time.time() + 0.3)})
    assert limiter.acquire() >= 0.2, "at most `reserve` requests left: wait for the new window"
