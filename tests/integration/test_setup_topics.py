"""`streams setup` creates the DLQ with the configured retention (it holds raw payloads)."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from pipeline_support import drop_pipeline_resources

from streams.config import Settings
from streams.connections import kafka_kwargs
from streams.setup import create_topics

pytestmark = pytest.mark.integration


async def _retention_ms(settings: Settings, topic: str) -> str:
    admin = AIOKafkaAdminClient(**kafka_kwargs(settings))
    await admin.start()
    try:
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    (resource,) = response.resources
    return {entry[0]: entry[1] for entry in resource[4]}["retention.ms"]


async def test_dlq_retention_comes_from_the_settings(kafka_bootstrap: str, pg_dsn: str, unique_name: str
                                                     ) -> None:
    settings = Settings(dev_mode=True, kafka_bootstrap=kafka_bootstrap, pg_dsn=pg_dsn,
                        app_id=f"hm-{unique_name}",
                        raw_topic=f"{unique_name}.raw", dlq_topic=f"{unique_name}.dlq",
                        warehouse_schema=unique_name, dlq_retention_hours=2)
    try:
        assert sorted(await create_topics(settings)) == sorted([settings.raw_topic, settings.dlq_topic])
        assert await _retention_ms(settings, settings.dlq_topic) == str(2 * 3600 * 1000)
    finally:
        await drop_pipeline_resources(settings)
