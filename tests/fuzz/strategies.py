"""Hypothesis strategies for hostile Kafka message values.

Arbitrary JSON alone almost never gets past the first missing field, so most examples
are *reading-shaped*: every field present, each drawn either from plausible values or
from arbitrary JSON (control characters, lone surrogates, huge numbers, NaN, deep
nesting...). Encoded with the stdlib so that NaN/Infinity literals, duplicate-free
ASCII escapes and raw (surrogate-passing) UTF-8 all occur.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from streams.domain.catalogue import DEFAULT_CATALOGUE

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

hostile_text = st.text(st.characters(exclude_categories=()), max_size=300)
texts = st.one_of(hostile_text, st.text(max_size=20), st.sampled_from(["", " ", "x" * 257, "a\x00b"]))
numbers = st.one_of(st.integers(), st.floats(), st.integers(min_value=-(2**70), max_value=2**70))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(texts, inner, max_size=5)),
    max_leaves=20)

offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
# st.datetimes takes naive bounds and attaches the drawn offsets itself
moments = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),  # noqa: DTZ001
                       timezones=offsets)
near_now = st.floats(-3 * 86400, 600).map(lambda s: NOW + timedelta(seconds=s))
timestamps = st.one_of(
    st.one_of(moments, near_now).map(lambda d: d.isoformat()),
    st.builds(lambda d, tail: d.isoformat() + tail, near_now, hostile_text),
    near_now.map(lambda d: int(d.timestamp() * 1000)),
    st.integers(), json_values)
metrics = st.one_of(st.sampled_from(sorted(DEFAULT_CATALOGUE)), texts)
units = st.one_of(
    st.sampled_from(sorted({u for rule in DEFAULT_CATALOGUE.values() for u in rule.conversions})), texts)


def _field(plausible: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(plausible, plausible, plausible, json_values)


ids = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), min_size=1, max_size=30)
member = st.fixed_dictionaries(
    {"event_id": _field(ids), "metric": _field(metrics), "value": _field(numbers),
     "unit": _field(units), "timestamp": _field(timestamps)},
    optional={"metadata": _field(st.dictionaries(texts, json_values, max_size=4))})
header = st.fixed_dictionaries(
    {"user_id": _field(ids), "source": _field(ids)}, optional={"device_id": _field(ids)})
single = st.builds(lambda h, m, extra: {**h, **m, **extra}, header, member,
                   st.dictionaries(texts, json_values, max_size=2))
envelope = st.builds(lambda h, b, rs: {**h, "batch_id": b, "readings": rs},
                     header, _field(ids), st.lists(st.one_of(member, json_values), max_size=6))


def encoded(doc: st.SearchStrategy) -> st.SearchStrategy[bytes]:
    return st.builds(_dumps, doc, st.booleans())


def _dumps(doc: object, ascii_only: bool) -> bytes:
    return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


message_values = st.one_of(encoded(single), encoded(envelope), encoded(json_values), st.binary(max_size=300))
