"""The poison corpus: every message here must be dead-lettered (duplicate JSON keys may
instead be stored, but then exactly once and never also dead-lettered), and the valid
readings sent around it must still be stored.

``corpus(full=False)`` leaves out the 200 000-reading envelope (about 14 MB) so that the
shortened form in ``make test`` stays quick.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson

from chaos.traffic import Expect

STRING_FIELDS = ("event_id", "user_id", "device_id", "source", "metric", "unit", "timestamp")
ENVELOPE_FIELDS = ("batch_id", "user_id", "device_id", "source")
# NUL, other C0, ESC, DEL, and C1 (NEL, APC).
CONTROL = ("\x00", "\x01", "\x1b", "\x7f", "\x85", "\x9f")
LONG = 12_000
Poison = tuple[bytes, Expect]


def _reading(n: int, now: datetime) -> dict:
    return {"event_id": f"poison-{n}", "user_id": "poison-user", "device_id": "dev-1",
            "source": "garmin", "metric": "steps", "value": 100, "unit": "count",
            "timestamp": (now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
            "metadata": {"fw": "1"}}


class _Corpus:
    def __init__(self, now: datetime) -> None:
        self.now, self.n = now, 0

    def reading(self, **changes: object) -> dict:
        self.n += 1
        return {**_reading(self.n, self.now), **changes}

    def dead(self, kind: str, doc: dict | bytes) -> Poison:
        return (doc if isinstance(doc, bytes) else orjson.dumps(doc)), Expect(kind, dead=1, whole=True)

    def envelope(self, members: list[dict], **changes: object) -> dict:
        self.n += 1
        return {"batch_id": f"poison-batch-{self.n}", "user_id": "poison-user", "device_id": "dev-1",
                "source": "garmin", "readings": members, **changes}


def corpus(*, full: bool = True, now: datetime | None = None) -> Iterator[Poison]:
    c = _Corpus(now or datetime.now(UTC))
    for field in STRING_FIELDS:
        for ch in CONTROL:
            r = c.reading()
            yield c.dead(f"control {ord(ch):#04x} in {field}", {**r, field: f"{r[field]}{ch}x"})
        yield c.dead(f"{LONG}-char {field}", c.reading(**{field: "x" * LONG}))
    yield c.dead("NUL in metadata value", c.reading(metadata={"fw": "a\x00b"}))
    yield c.dead("NUL in metadata key", c.reading(metadata={"f\x00w": "1"}))
    yield c.dead("20 KiB metadata", c.reading(metadata={"pad": "m" * 20_000}))
    for field in ENVELOPE_FIELDS:
        good = [c.reading() for _ in range(2)]
        yield c.dead(f"NUL in envelope {field}", c.envelope(good, **{field: "b\x00"}))
        yield c.dead(f"{LONG}-char envelope {field}", c.envelope(good, **{field: "b" * LONG}))
    yield from _mixed_envelope(c)
    yield from _bytes(c)
    yield from _numbers_and_times(c)
    yield from _duplicate_keys(c)
    if full:
        members = [{"event_id": f"big-{i}", "metric": "steps", "value": 1, "unit": "count",
                    "timestamp": 1_760_000_000_000} for i in range(200_000)]
        yield c.dead("200000-reading envelope", c.envelope(members))


def _mixed_envelope(c: _Corpus) -> Iterator[Poison]:
    good = [c.reading() for _ in range(3)]
    bad = [c.reading(event_id="m\x00"), c.reading(event_id="m" * LONG), c.reading(source="s\x00")]
    env = c.envelope([good[0], bad[0], good[1], bad[1], good[2], bad[2]])
    # member-level source is ignored (the envelope's wins), so bad[2] is a good reading
    yield orjson.dumps(env), Expect("envelope with NUL and over-long members",
                                    stored=tuple(r["event_id"] for r in (*good, bad[2])), dead=2)


def _bytes(c: _Corpus) -> Iterator[Poison]:
    valid = orjson.dumps(c.reading())
    yield c.dead("invalid UTF-8 in a string", valid.replace(b'"garmin"', b'"gar\xff\xfemin"'))
    yield c.dead("overlong UTF-8 NUL", orjson.dumps(c.reading()).replace(b'"garmin"', b'"g\xc0\x80"'))
    yield c.dead("lone surrogate escape", orjson.dumps(c.reading()).replace(b'"garmin"', b'"g\\ud800"'))
    yield c.dead("binary garbage", bytes(range(256)) * 8)
    yield c.dead("2 MB reading", c.reading(metadata={"pad": "y" * (2 * 1024 * 1024)}))
    yield c.dead("2 MB of spaces", b" " * (2 * 1024 * 1024))
    yield c.dead("nesting 100000 deep", b"[" * 100_000 + b"]" * 100_000)
    deep = orjson.dumps(c.reading(metadata=None)).replace(
        b'"metadata":null', b'"metadata":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    yield c.dead("metadata nested 100000 deep", deep)


def _numbers_and_times(c: _Corpus) -> Iterator[Poison]:
    for raw in (b"1e400", b"-1e400", b"1e308", b"123456789012345678901234567890", b"-" + b"9" * 400):
        doc = orjson.dumps(c.reading(value=0.5)).replace(b'"value":0.5', b'"value":' + raw)
        yield c.dead(f"value {raw.decode()[:12]}", doc)
    yield c.dead("metadata number 1e400", orjson.dumps(c.reading(metadata={"n": 0.5})).replace(
        b'"n":0.5', b'"n":1e400'))
    for stamp in ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z",
                  "9999-12-31T23:59:59-14:00", -62_135_596_800_000, 253_402_300_799_999,
                  253_402_300_800_000, 10**19, -(10**19), 2**63, "1969-12-31T23:59:59Z"):
        raw = orjson.dumps(stamp) if isinstance(stamp, str) else str(stamp).encode()
        yield c.dead(f"timestamp {stamp}", orjson.dumps(c.reading(timestamp="T")).replace(
            b'"timestamp":"T"', b'"timestamp":' + raw))


def _duplicate_keys(c: _Corpus) -> Iterator[Poison]:
    r = c.reading()
    body = orjson.dumps(r)
    yield (body[:-1] + b',"value":7}', Expect("duplicate value key", either=(r["event_id"],)))
    r = c.reading()
    yield (orjson.dumps(r)[:-1] + b',"source":"s\\u0000"}',
           Expect("duplicate source key, last one NUL", either=(r["event_id"],)))
    r = c.reading(source="s\x00")
    yield (orjson.dumps(r)[:-1] + b',"source":"garmin"}',
           Expect("duplicate source key, first one NUL", either=(r["event_id"],)))
    r = c.reading(event_id="dup-first")
    yield (orjson.dumps(r)[:-1] + b',"event_id":"dup-last"}',
           Expect("duplicate event_id key", either=("dup-first", "dup-last")))
