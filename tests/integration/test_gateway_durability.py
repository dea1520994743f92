"""kill -9 Kafka while apps post to the gateway: every 202 is stored after Kafka is back.

The broker killed here is a private one (``stack.sh kafka-up`` in ``.stack/gateway-kafka``,
its own ports): the shared stack is never touched. The warehouse is a schema of its own on
the shared PostgreSQL. ``make chaos`` runs the same scenario on its private stack.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chaos.gateway import gateway_broker_kill
from chaos.pipeline import isolated
from chaos.stack import PrivateKafka, StackAddress

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def private_kafka() -> Iterator[PrivateKafka]:
    kafka = PrivateKafka("gateway-kafka", 19492)  # below the ephemeral range, beside the chaos ports
    kafka.up()
    try:
        yield kafka
    finally:
        kafka.down()


async def test_every_202_is_stored_after_a_kafka_kill(private_kafka, pg_dsn, tmp_path):
    async with isolated(StackAddress(private_kafka.bootstrap, pg_dsn), tmp_path) as pipeline:
        row = await gateway_broker_kill(pipeline, private_kafka)
    details = "\n".join([row.notes, *row.problems, *row.verdict.problems, *row.deaths])
    print(f"{row.scenario}: {details}; stored {row.verdict.stored}, answered 202 {row.verdict.sent}")
    assert row.ok, details
    assert row.verdict.sent > 0 and row.verdict.stored >= row.verdict.sent, details
