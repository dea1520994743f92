"""Token buckets per key and the concurrency cap (web/limits.py), with an injected clock."""

from __future__ import annotations

from web.limits import ConcurrencyCap, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate_with_a_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=0.5, burst=3, clock=clock)
    assert [limiter.acquire("alice") for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire("alice") == 2  # one token takes 2 s at 0.5/s
    assert limiter.acquire("bob") == 0  # keys are independent
    clock.now += 2
    assert limiter.acquire("alice") == 0 and limiter.acquire("alice") > 0
    clock.now += 1000
    assert [limiter.acquire("alice") for _ in range(4)] == [0, 0, 0, 2]  # refills up to the burst only


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(rate=1, burst=1, clock=Clock(), max_keys=10)
    for i in range(100):
        limiter.acquire(f"k{i}")
    assert len(limiter._buckets) == 10


def test_the_cap_refuses_beyond_its_limit_and_release_is_idempotent() -> None:
    cap = ConcurrencyCap(2)
    first, second = cap.try_acquire(), cap.try_acquire()
    assert first and second and cap.try_acquire() is None
    first()
    first()
    assert cap.in_flight == 1
    third = cap.try_acquire()
    assert third is not None and cap.try_acquire() is None
