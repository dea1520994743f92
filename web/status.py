"""What ``GET /pipeline/status`` reports, gathered from the running worker.

Each part degrades on its own: an unreachable warehouse turns ``warehouse.reachable``
false and ``dead_letters`` null, it does not fail the call.

Stalled partition: an assigned partition with lag > 0 whose last warehouse commit is older
than ``HEALTHMATE_API_STALL_AFTER_S`` (a partition that has not committed since this
worker started counts from the worker's start).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from aiokafka import TopicPartition

from web import queries
from web.history import PipelineHistory

log = logging.getLogger(__name__)

WINDOW_S = 60.0


class ThroughputMeter:
    """Counts what the ingest service commits; registered as one of its batch observers."""

    def __init__(self, clock: Callable[[], datetime], history: PipelineHistory | None = None) -> None:
        self.clock = clock
        self.started_at = clock()
        self.history = history
        self._batches: deque[tuple[datetime, int, int]] = deque()

    async def observe(self, readings: Sequence[Any], dead_letters: Sequence[Any]) -> None:
        """Called after each committed batch (also feeds the per-minute ``history``)."""
        now = self.clock()
        self._batches.append((now, len(readings), len(dead_letters)))
        self._prune(now)
        if self.history is not None:
            self.history.record_batch(now, len(readings), len(dead_letters))

    def _prune(self, now: datetime) -> None:
        while self._batches and (now - self._batches[0][0]).total_seconds() > WINDOW_S:
            self._batches.popleft()

    def last_minute(self) -> dict[str, Any]:
        self._prune(self.clock())
        readings = sum(b[1] for b in self._batches)
        dead = sum(b[2] for b in self._batches)
        return {"window_s": WINDOW_S, "batches": len(self._batches), "readings": readings,
                "dead_letters": dead, "readings_per_s": round(readings / WINDOW_S, 3)}


def total_lag(ingest: Any) -> int | None:
    """Sum of the assigned partitions' lag from what the consumer already knows (its last
    fetched high watermarks; no network call); None before the consumer has a position."""
    consumer = ingest.consumer
    if consumer is None:
        return None
    lags = []
    for tp in consumer.assignment():
        high, done = consumer.highwater(tp), ingest.committed_offsets.get((tp.topic, tp.partition))
        if high is not None and done is not None:
            lags.append(max(0, high - done))
    return sum(lags) if lags else None


async def kafka_ready(ingest: Any) -> bool:
    consumer = ingest.consumer
    if consumer is None:
        return False
    try:
        await asyncio.wait_for(consumer.topics(), timeout=2)
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False
    return True


async def warehouse_ready(warehouse: Any) -> bool:
    try:
        await asyncio.wait_for(warehouse.pool.fetchval("SELECT 1"), timeout=2)
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False
    return True


async def health(ingest: Any, warehouse: Any, max_poll_age_s: float, *, only_liveness: bool = False
                 ) -> dict[str, Any]:
    """The ``/health`` document: ``status`` is ``ok`` only if live (and ready, unless
    ``only_liveness``: the k8s liveness probe, which must not restart a worker that is
    merely waiting for PostgreSQL or Kafka to come back)."""
    consumer = ingest.liveness(max_poll_age_s)
    consumer["partitions"] = [
        {"topic": t, "partition": p, "last_commit_age_s": _rounded(ingest.commit_ages.age_s((t, p)))}
        for t, p in ingest.commit_ages]
    body: dict[str, Any] = {"live": consumer["live"], "consumer": consumer}
    ok = consumer["live"]
    if not only_liveness:
        checks = {"kafka": await kafka_ready(ingest), "warehouse": await warehouse_ready(warehouse)}
        body.update(ready=all(checks.values()), checks=checks)
        ok = ok and body["ready"]
    body["status"] = "ok" if ok else "degraded"
    return body


async def partitions(ingest: Any, now: datetime, started_at: datetime, stall_after_s: float
                     ) -> list[dict[str, Any]]:
    """Lag and last-commit age of every partition this worker is assigned."""
    consumer = ingest.consumer
    if consumer is None:
        return []
    assigned: list[TopicPartition] = sorted(consumer.assignment())
    try:
        ends = await asyncio.wait_for(consumer.end_offsets(assigned), timeout=2) if assigned else {}
    except Exception:  # noqa: BLE001 - fall back to the fetcher's last known high watermark
        ends = {}
    rows = []
    for tp in assigned:
        key = (tp.topic, tp.partition)
        committed = ingest.committed_offsets.get(key)
        high = ends.get(tp, consumer.highwater(tp))
        lag = max(0, high - committed) if high is not None and committed is not None else None
        last = ingest.last_commit_at.get(key)
        age = ingest.commit_ages.age_s(key)  # read now, after the awaits above: never negative
        quiet_for = age if age is not None else (now - started_at).total_seconds()
        rows.append({
            "topic": tp.topic, "partition": tp.partition, "committed_offset": committed,
            "end_offset": high, "lag": lag, "last_commit_at": last,
            "last_commit_age_s": _rounded(age),
            "stalled": bool(lag) and quiet_for >= stall_after_s,
        })
    return rows


def _rounded(age: float | None) -> float | None:
    return None if age is None else round(age, 3)


def services(api: Any) -> dict[str, Any]:
    """Each service's and agent's state (``init``, ``running``, ``stopping``, ``crashed``...)."""
    app = api.app
    return {
        "worker": app.state,
        "ingest": api.ingest.state,
        "agents": {str(name): agent.state for name, agent in app.agents.items()},
    }


async def pipeline_status(api: Any, quality: Callable[[], Any] | None = None) -> dict[str, Any]:
    """The status document (see the module docstring)."""
    now = api.clock()
    meter: ThroughputMeter = api.extensions["throughput"]
    schema = api.settings.warehouse_schema
    kafka_ok, warehouse_ok = await asyncio.gather(kafka_ready(api.ingest), warehouse_ready(api.warehouse))
    parts = await partitions(api.ingest, now, meter.started_at, api.settings.api_stall_after_s)
    dead: dict[str, int] | None = None
    if warehouse_ok:
        try:
            dead = await queries.dead_letters_by_reason(api.warehouse.pool, schema)
        except Exception:  # noqa: BLE001 - reported as unknown
            dead = None
    stalled = [f"{p['topic']}/{p['partition']}" for p in parts if p["stalled"]]
    lag = sum(p["lag"] or 0 for p in parts)
    if meter.history is not None and parts:
        meter.history.record_lag(now, lag)
    body: dict[str, Any] = {
        "status": "ok" if kafka_ok and warehouse_ok and not stalled
        and api.ingest.state == "running" else "degraded",
        "at": now,
        "services": services(api),
        "kafka": {"reachable": kafka_ok},
        "warehouse": {"reachable": warehouse_ok},
        "consumer": {"group": api.settings.consumer_group, "partitions": parts,
                     "total_lag": lag, "stalled": stalled},
        "throughput": meter.last_minute(),
        "dead_letters": None if dead is None else {"by_reason": dead, "total": sum(dead.values())},
    }
    if quality is not None:
        try:
            body["quality"] = await quality()
        except Exception as exc:  # noqa: BLE001 - reported as unknown, like the other parts
            log.warning("quality levels unavailable: %s", type(exc).__name__)
            body["quality"] = None
    return body
