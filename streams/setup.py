"""Idempotent pipeline setup: topics on the broker, the warehouse schema and its coming partitions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.config import Settings
from streams.connections import kafka_kwargs, warehouse_from_settings
from streams.sink.warehouse import month_start, next_month


async def create_topics(settings: Settings) -> list[str]:
    """Create the raw, dead-letter and (compacted) profiles topics if missing; return the ones
    created now."""
    wanted = [
        NewTopic(settings.raw_topic, settings.topic_partitions, settings.topic_replication,
                 topic_configs={"max.message.bytes": str(4 * 1024 * 1024)}),
        NewTopic(settings.dlq_topic, settings.topic_partitions, settings.topic_replication,
                 topic_configs={"max.message.bytes": str(4 * 1024 * 1024),
                                "retention.ms": str(int(settings.dlq_retention_hours * 3600 * 1000))}),
        NewTopic(settings.profiles_topic, settings.topic_partitions, settings.topic_replication,
                 topic_configs={"cleanup.policy": "compact"}),
    ]
    admin = AIOKafkaAdminClient(**kafka_kwargs(settings))
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


def coming_months(now: datetime, ahead: int) -> list[datetime]:
    """The current month and the ``ahead`` following ones (month starts, UTC)."""
    months = [month_start(now)]
    for _ in range(ahead):
        months.append(next_month(months[-1]))
    return months


async def setup_pipeline(settings: Settings, *, now: datetime | None = None,
                         step: Callable[[str], None] | None = None) -> dict[str, list]:
    """Topics, migrations, and the monthly ``health_readings`` partitions of this month and
    ``HEALTHMATE_WAREHOUSE_PARTITIONS_AHEAD`` more; safe to run any number of times.
    ``step`` is told each stage as it starts."""
    say = step or (lambda _: None)
    say(f"topics {settings.raw_topic}, {settings.dlq_topic} ({settings.topic_partitions} partitions each)")
    topics = await create_topics(settings)
    say(f"warehouse schema {settings.warehouse_schema}: migrations")
    warehouse = warehouse_from_settings(settings, pool_max=1)
    await warehouse.start()
    try:
        months = coming_months(now or datetime.now(UTC), settings.warehouse_partitions_ahead)
        say(f"monthly partitions {months[0]:%Y-%m}..{months[-1]:%Y-%m}")
        await warehouse.ensure_partitions(months)
    finally:
        await warehouse.stop()
    return {"topics_created": topics, "partitions": [f"health_readings_p{m:%Y%m}" for m in months]}
