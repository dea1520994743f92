"""The ingest gateway in the secure mode: Kafka SASL_SSL (SCRAM-SHA-512, ACLs on) as a
producer's principal, which may write the raw topic and nothing else; a 202 is a message
the broker holds."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from gateway_support import running_gateway
from pipeline_support import read_topic
from pydantic import SecretStr

from streams.connections import kafka_kwargs
from web.auth import mint_token

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "secure-gateway-test-secret-of-32-bytes-or-more"


async def test_the_gateway_writes_as_the_producer_principal(secure_pipeline, tmp_path: Path) -> None:
    env = secure_pipeline.env("producer", HEALTHMATE_API_JWT_SECRET=SECRET)
    producer = secure_pipeline.settings("producer", HEALTHMATE_API_JWT_SECRET=SECRET)
    assert producer.kafka_security_protocol == "SASL_SSL"
    assert producer.kafka_sasl_username == "healthmate-producer"
    signer = producer.model_copy(update={"api_jwt_secret": SecretStr(SECRET)})
    token = mint_token(signer, subject="user-secret-2", roles=["producer"])
    reading = {"metric": "heart_rate", "value": 61, "unit": "bpm", "timestamp": "2026-01-01T00:00:00Z",
               "source": "garmin"}
    async with running_gateway(env, tmp_path / "gateway.log") as gateway:
        async with aiohttp.ClientSession() as session, session.post(
                gateway.url, data=json.dumps(reading), headers={"Authorization": f"Bearer {token}",
                                                                 "Content-Type": "application/json"}) as r:
            status, answer = r.status, await r.json()
    assert status == 202, answer
    admin = secure_pipeline.settings("admin")
    [record] = await read_topic(kafka_kwargs(admin), admin.raw_topic)
    assert record.key == b"user-secret-2"
    assert json.loads(record.value) == {**reading, "user_id": "user-secret-2"}
