"""Judge a scenario from outside: the raw topic, the warehouse and the DLQ topic.

Every raw record is looked up in the :class:`~chaos.traffic.Ledger` by its bytes; from
that the expected stored event ids and dead letters per raw offset follow, and are
compared with ``health_readings``, ``dead_letters``, ``sink_offsets`` and the ``dlq.id``
headers of the DLQ topic.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import asyncpg
from pipeline_support import end_offsets, read_topic

from chaos.traffic import Ledger
from streams.config import Settings
from streams.sink.migrations import quote_ident


@dataclass
class Verdict:
    sent: int = 0
    stored: int = 0
    dlq: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    undead: int = 0  # bad messages not dead-lettered
    offsets_ok: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify(settings: Settings, ledger: Ledger) -> Verdict:
    v = Verdict()
    raw = await read_topic(settings.kafka_bootstrap, settings.raw_topic, timeout=120)
    must_store: set[str] = set()
    either: dict[tuple[int, int], tuple[str, ...]] = {}
    dead_expected: dict[tuple[int, int], tuple[int, bool, str]] = {}
    for record in raw:
        expect = ledger.lookup(record.value)
        if expect is None:
            v.problems.append(f"raw record {record.partition}/{record.offset} not sent by the harness")
            continue
        must_store.update(expect.stored)
        v.sent += len(expect.stored) + expect.dead + len(expect.either)
        where = (record.partition, record.offset)
        if expect.either:
            either[where] = expect.either
        if expect.dead:
            dead_expected[where] = (expect.dead, expect.whole, expect.kind)

    s = quote_ident(settings.warehouse_schema)
    conn = await asyncpg.connect(settings.pg_dsn_value)
    try:
        rows = await conn.fetch(f"SELECT event_id FROM {s}.health_readings")
        letters = await conn.fetch(f'SELECT partition, "offset", reason FROM {s}.dead_letters WHERE topic=$1',
                                   settings.raw_topic)
        offsets = {r["partition"]: r["next_offset"] for r in await conn.fetch(
            f"SELECT partition, next_offset FROM {s}.sink_offsets WHERE consumer_group=$1 AND topic=$2",
            settings.consumer_group, settings.raw_topic)}
    finally:
        await conn.close()

    counts = Counter(r["event_id"] for r in rows)
    stored = set(counts)
    v.stored, v.duplicated = len(stored), len(rows) - len(stored)
    v.lost = len(must_store - stored)
    either_ids = {i for ids in either.values() for i in ids}
    wrongly_stored = stored - must_store - either_ids
    dead_at = Counter((r["partition"], r["offset"]) for r in letters)
    v.dlq = len(letters)
    missing_dead, wrong_dead = _compare_dead(dead_expected, either, dead_at, stored)
    v.undead = len(missing_dead)
    v.wrong = len(wrongly_stored) + len(wrong_dead)
    _note(v, "lost (not stored)", sorted(must_store - stored))
    _note(v, "bad messages not dead-lettered", missing_dead)
    _note(v, "wrongly stored", sorted(wrongly_stored))
    _note(v, "wrongly dead-lettered (offset, reason)", wrong_dead)
    if v.duplicated:
        twice = [i for i, n in counts.items() if n > 1][:3]
        v.problems.append(f"{v.duplicated} duplicate rows, e.g. {twice}")

    ends = await end_offsets(settings.kafka_bootstrap, settings.raw_topic)
    v.offsets_ok = all(0 <= offsets.get(p, 0) <= end for p, end in ends.items()) and offsets == {
        p: e for p, e in ends.items() if e}
    if not v.offsets_ok:
        v.problems.append(f"sink_offsets {offsets} vs topic end offsets {ends}")
    await _check_dlq_topic(settings, set(dead_at), v)
    return v


def _compare_dead(expected, either, dead_at, stored):
    missing, wrong = [], []
    for where, (count, whole, kind) in expected.items():
        got = dead_at.get(where, 0)
        if got < 1 or (not whole and got != count):
            missing.append(f"{kind} at {where[0]}/{where[1]}: {got} of {count}")
    for where, ids in either.items():
        outcomes = sum(i in stored for i in ids) + (where in dead_at)
        if outcomes == 0:
            missing.append(f"duplicate-key message at {where[0]}/{where[1]}: not stored, not dead-lettered")
        elif outcomes > 1:
            wrong.append(f"duplicate-key message at {where}: {outcomes} outcomes")
    for where in dead_at:
        if where not in expected and where not in either:
            wrong.append(where)
    return missing, wrong


async def _check_dlq_topic(settings: Settings, table_keys: set[tuple[int, int]], v: Verdict) -> None:
    published = set()
    for record in await read_topic(settings.kafka_bootstrap, settings.dlq_topic, timeout=120):
        topic, partition, offset, _member = dict(record.headers)["dlq.id"].decode().rsplit("/", 3)
        if topic == settings.raw_topic:
            published.add((int(partition), int(offset)))
    if not table_keys <= published:
        v.problems.append(f"{len(table_keys - published)} dead_letters rows never published to the DLQ topic")


def _note(v: Verdict, what: str, items: list) -> None:
    if items:
        v.problems.append(f"{len(items)} {what}: {[str(i)[:120] for i in items[:4]]}")
