"""The custom-processor agent, tested with Faust's own ``agent.test_context()``."""

from __future__ import annotations

from datetime import UTC, datetime

import faust
import orjson
import pytest

from streams.agents import process_streaming_data
from streams.domain.validate import Rules
from streams.errors import RejectReason

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def app() -> faust.App:
    app = faust.App("test-agents", store="memory://", autodiscover=False)
    app.finalize()
    app.conf.store = "memory://"
    return app


def reading(**overrides) -> bytes:
    base = {"event_id": "e-1", "user_id": "u-1", "source": "withings", "metric": "body_weight",
            "value": 154.0, "unit": "lb", "timestamp": "2026-11-26T11:00:00Z"}
    return orjson.dumps({**base, **overrides})


async def test_processor_sees_normalised_readings_and_bad_ones_are_not_passed_on(app):
    seen = []
    agent = process_streaming_data(app, "custom.in", seen.append, rules=Rules.default(b"k"),
                                   clock=lambda: NOW)
    async with agent.test_context() as agent_under_test:
        good = await agent_under_test.put(reading())
        bad = await agent_under_test.put(reading(event_id="e-2", unit="stone"))
        good_outcome = agent_under_test.results[good.message.offset]
        bad_outcome = agent_under_test.results[bad.message.offset]

    assert [r.event_id for r in seen] == ["e-1"]
    assert seen[0].value == pytest.approx(154.0 * 0.45359237)
    assert (seen[0].unit, seen[0].ingested_at) == ("kg", NOW)
    assert len(good_outcome.readings) == 1 and not good_outcome.dead_letters
    assert [d.code for d in bad_outcome.dead_letters] == [RejectReason.UNKNOWN_UNIT]


async def test_a_failing_processor_does_not_stop_the_agent(app):
    calls = []

    def flaky(r):
        calls.append(r.event_id)
        if r.event_id == "e-1":
            raise RuntimeError("boom")

    agent = process_streaming_data(app, "custom.flaky", flaky, rules=Rules.default(b"k"), clock=lambda: NOW)
    async with agent.test_context() as agent_under_test:
        await agent_under_test.put(reading(event_id="e-1"))
        await agent_under_test.put(reading(event_id="e-2"))
    assert calls == ["e-1", "e-2"]
