"""Idempotent pipeline setup: topics on the broker and the warehouse schema."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.config import Settings
from streams.sink.warehouse import Warehouse

DLQ_RETENTION_MS = 30 * 24 * 3600 * 1000


async def create_topics(settings: Settings) -> list[str]:
    """Create the raw and dead-letter topics if missing; return the ones created now."""
    wanted = [
        NewTopic(settings.raw_topic, settings.topic_partitions, settings.topic_replication,
                 topic_configs={"max.message.bytes": str(4 * 1024 * 1024)}),
        NewTopic(settings.dlq_topic, settings.topic_partitions, settings.topic_replication,
                 topic_configs={"max.message.bytes": str(4 * 1024 * 1024),
                                "retention.ms": str(DLQ_RETENTION_MS)}),
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process won the race; the topics exist either way
        return [t.name for t in missing]
    finally:
        await admin.close()


async def setup_pipeline(settings: Settings) -> dict[str, list]:
    """Topics and migrations; safe to run any number of times."""
    topics = await create_topics(settings)
    warehouse = Warehouse(settings.pg_dsn_value, settings.warehouse_schema,
                          pseudonym_key=settings.pseudonym_key_bytes)
    await warehouse.start()
    await warehouse.stop()
    return {"topics_created": topics}
