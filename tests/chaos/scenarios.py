"""The fault scenarios. Each runs on an isolated :class:`~chaos.pipeline.Pipeline`, injects
its fault under load, waits for the worker to catch up and returns a :class:`Row`.

``stack`` is a :class:`~chaos.stack.PrivateStack` for the scenarios that kill or restart
the broker or PostgreSQL; the others run on any stack.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from dataclasses import dataclass, field

from chaos.pipeline import Pipeline
from chaos.poison import corpus
from chaos.stack import PrivateStack
from chaos.traffic import Load, new_producer, send_surely
from chaos.verify import Verdict, verify
from chaos.workers import Fleet, group_members

RATE = 1500  # readings/s: comfortably below what the worker sustains on 2 shared cores
CATCH_UP_S = float(os.environ.get("CHAOS_CATCH_UP_S", 240))  # longest wait for the worker to drain


@dataclass
class Row:
    scenario: str
    verdict: Verdict = field(default_factory=Verdict)
    deaths: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.deaths and not self.problems


async def _run(name: str, p: Pipeline, fleet: Fleet, fault, *,  # type: ignore[no-untyped-def]
               rate: float = RATE, envelopes_only: bool = False) -> Row:
    """Load on, ``await fault(row, load)``, load off, catch up, verify."""
    row, started = Row(name), time.monotonic()
    producer = new_producer(p.settings.kafka_bootstrap)
    await producer.start()
    try:
        load = _load(p, producer, rate, envelopes_only)
        with fleet:
            load.start()
            await fault(row, load)
            await load.stop()
            if (late := await p.caught_up(CATCH_UP_S)) is not None:
                row.problems.append(late)
            row.deaths = list(fleet.uncaused)
    finally:
        await producer.stop()
    row.verdict = await verify(p.settings, p.ledger)
    row.seconds = time.monotonic() - started
    return row


def _load(p: Pipeline, producer, rate: float, envelopes_only: bool, seed: int = 11) -> Load:  # type: ignore[no-untyped-def]
    # Envelopes of 100 for the overload: a Python producer can offer twice the worker's rate
    # of single readings only on a machine with a core to spare.
    shape = {"envelope_share": 1.0, "envelope_size": 100} if envelopes_only else {}
    return Load(p.ledger, producer, p.settings.raw_topic, rate, seed=seed, **shape)


async def kill_9(p: Pipeline, kills: int = 20) -> Row:
    fleet = Fleet(p.env, p.log_dir)
    rng = random.Random(20)

    async def fault(row: Row, load: Load) -> None:
        seen = 0
        for i in range(kills):
            progress = await p.wait_for_progress(seen)
            if progress is None:
                row.problems.append(f"no progress before kill {i + 1}")
                return
            seen = progress
            await asyncio.sleep(rng.uniform(0.0, 1.0))
            fleet.kill9(fleet.workers[0])
        row.notes = f"{kills} kills"

    return await _run(f"kill -9 x{kills}", p, fleet, fault)


async def postgres_restart(p: Pipeline, stack: PrivateStack) -> Row:
    async def fault(row: Row, load: Load) -> None:
        await _progress_or_note(p, row, "before the restart")
        await asyncio.to_thread(stack.restart_postgres)
        await _progress_or_note(p, row, "after the restart")

    return await _run("postgres restart", p, Fleet(p.env, p.log_dir), fault)


async def postgres_stop_start(p: Pipeline, stack: PrivateStack, down_s: float = 15) -> Row:
    async def fault(row: Row, load: Load) -> None:
        await _progress_or_note(p, row, "before the stop")
        await asyncio.to_thread(stack.stop_postgres)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(stack.start_postgres)
        await _progress_or_note(p, row, "after the start")

    return await _run(f"postgres stop {down_s:.0f}s start", p, Fleet(p.env, p.log_dir), fault)


async def broker_kill(p: Pipeline, stack: PrivateStack) -> Row:
    async def fault(row: Row, load: Load) -> None:
        await _progress_or_note(p, row, "before the kill")
        stack.kill_broker()
        await asyncio.sleep(5)
        await asyncio.to_thread(stack.start_broker)
        await _progress_or_note(p, row, "after the restart", timeout=120)

    return await _run("broker kill -9 + restart", p, Fleet(p.env, p.log_dir), fault)


async def _progress_or_note(p: Pipeline, row: Row, when: str, timeout: float = 60) -> None:
    if await p.wait_for_progress(await _stored_now(p), timeout=timeout) is None:
        row.problems.append(f"nothing stored for {timeout:.0f}s {when}")


async def _stored_now(p: Pipeline) -> int:
    try:
        return await p.stored()
    except OSError:
        return 0


async def rebalance(p: Pipeline, loops: int = 10, settle_s: float = 45) -> Row:
    fleet = Fleet(p.env, p.log_dir, size=2)
    timings: list[float] = []

    async def fault(row: Row, load: Load) -> None:
        members = await _settled(p, fleet, row, "at start", settle_s, frozenset())
        for i in range(loops):
            if members is None:
                return
            victim = fleet.workers[i % 2]
            started = time.monotonic()
            fleet.kill9(victim, restart=False)
            await asyncio.sleep(1)
            victim.start()
            members = await _settled(p, fleet, row, f"loop {i + 1}", settle_s, members)
            timings.append(time.monotonic() - started)
        await load.stop()
        fleet.stop_watching()
        await p.caught_up(CATCH_UP_S)  # SIGTERM timing is measured on caught-up workers
        for w in fleet.workers:
            if w.sigterm_seconds(15) is None:
                row.problems.append(f"{w.log_path.name} ignored SIGTERM for 15 s")
        row.notes = f"rejoin max {max(timings, default=0):.0f}s"

    return await _run(f"2 workers, {loops} kill/rejoin loops", p, fleet, fault)


async def _settled(p: Pipeline, fleet: Fleet, row: Row, when: str, limit: float,
                   before: frozenset[str]) -> frozenset[str] | None:
    """The group's member ids once it is stable with two members other than ``before``
    (the killed one has left), both /health answer and rows still arrive; else None."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    state: tuple[str, frozenset[str]] = ("?", frozenset())
    while loop.time() < deadline:
        state = await group_members(p.settings.kafka_bootstrap, p.settings.consumer_group)
        if state[0] == "Stable" and len(state[1]) == 2 and state[1] != before:
            answers = await asyncio.gather(*(w.health() for w in fleet.workers))
            if None in answers:
                row.problems.append(f"/health did not answer within 5 s {when}: {answers}")
                return None
            if await p.wait_for_progress(await p.stored(), timeout=max(1.0, deadline - loop.time())):
                return state[1]
        await asyncio.sleep(0.5)
    row.problems.append(f"group not stable with 2 new members and progress in {limit:.0f}s {when} "
                        f"(last {state[0]}, {len(state[1])} members)")
    return None


async def overload(p: Pipeline, seconds: float = 120) -> Row:
    capacity = await _capacity(p)
    fleet = Fleet(p.env, p.log_dir)
    rss: list[float] = []

    async def fault(row: Row, load: Load) -> None:
        for _ in range(int(seconds / 2)):
            await asyncio.sleep(2)
            rss.append(fleet.workers[0].rss_mb())
        offered = load.offered_rate(seconds)
        third = max(1, len(rss) // 3)
        early, late = statistics.median(rss[:third]), statistics.median(rss[-third:])
        if max(rss) > 1024 or late > 1.5 * early + 64:
            row.problems.append(f"RSS grew: early {early:.0f} MB, late {late:.0f} MB, peak {max(rss):.0f} MB")
        if offered < 1.8 * capacity:
            row.problems.append(f"the harness offered only {offered / capacity:.1f}x the capacity")
        row.notes = (f"capacity {capacity:.0f}/s, offered {offered:.0f}/s ({offered / capacity:.1f}x), "
                     f"RSS {min(rss):.0f}-{max(rss):.0f} MB")

    return await _run(f"2x overload {seconds:.0f}s", p, fleet, fault, rate=2 * capacity, envelopes_only=True)


async def _capacity(p: Pipeline, readings: int = 40_000) -> float:
    """Readings/s the worker stores from a backlog of envelopes of 100."""
    producer = new_producer(p.settings.kafka_bootstrap)
    await producer.start()
    try:
        await _load(p, producer, 0, envelopes_only=True, seed=99).backlog(readings)
    finally:
        await producer.stop()
    with Fleet(p.env, p.log_dir):
        first = await p.wait_for_progress(0, timeout=120)
        started = time.monotonic()
        await p.caught_up(CATCH_UP_S)
        stored = await p.stored()
    return (stored - (first or 0)) / max(time.monotonic() - started, 0.1)


async def poison(p: Pipeline, *, full: bool = True) -> Row:
    async def fault(row: Row, load: Load) -> None:
        await _progress_or_note(p, row, "before the poison")
        producer = new_producer(p.settings.kafka_bootstrap, gzip=True)
        await producer.start()
        try:
            for i, (value, expect) in enumerate(corpus(full=full)):
                p.ledger.add(value, expect)
                await send_surely(producer, p.settings.raw_topic, f"poison-{i % 8}".encode(), value)
                await asyncio.sleep(0.02)
        finally:
            await producer.stop()
        await asyncio.sleep(5)  # valid traffic behind the poison
        await _progress_or_note(p, row, "after the poison")
        row.notes = f"{sum(1 for _ in corpus(full=full))} poison messages"

    return await _run("poison corpus under load", p, Fleet(p.env, p.log_dir), fault, rate=RATE / 2)
