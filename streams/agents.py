"""Faust agents: thin loops that hand each message to the pure domain code.

``process_streaming_data`` is the extension point for custom processors: it runs the same
validation and normalisation as the ingest service on another topic and calls a user
function for every normalised reading. It does not write the warehouse or the DLQ: the
ingest service alone owns those for the raw topic.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import faust
from faust.types import AgentT, StreamT

from streams.batching import ReadingProcessor
from streams.clock import Clock, utc_now
from streams.domain.validate import Rules, process_message
from streams.records import MessageContext, MessageOutcome

log = logging.getLogger(__name__)


def process_streaming_data(
    app: faust.App,
    topic_name: str,
    processor_func: ReadingProcessor,
    *,
    rules: Rules,
    clock: Clock = utc_now,
) -> AgentT:
    """Register an agent on ``topic_name`` that calls ``processor_func(reading)`` for each
    valid, normalised reading. The agent yields each message's ``MessageOutcome``.

    A processor that raises does not stop the stream: the error is logged (by type only,
    no PHI) and the next reading is processed.
    """
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")

    async def run(stream: StreamT) -> AsyncIterator[MessageOutcome]:
        async for event in stream.events():
            message = event.message
            ctx = MessageContext(
                topic=message.topic, partition=message.partition, offset=message.offset,
                ingested_at=clock(),
                produced_at=datetime.fromtimestamp(message.timestamp, tz=UTC) if message.timestamp else None,
            )
            outcome = process_message(event.value, ctx, rules, event.key)
            for reading in outcome.readings:
                try:
                    processor_func(reading)
                except Exception as exc:  # noqa: BLE001 - a user function must not kill the agent
                    log.warning("custom processor %s failed: %s", processor_func.__name__, type(exc).__name__)
            yield outcome

    return app.agent(topic, name=f"process-{topic_name}")(run)
