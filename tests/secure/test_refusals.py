"""The secure stack refuses a wrong password, a plaintext client and a certificate for the
wrong host, on Kafka and on PostgreSQL, with an error that says so (and never the secret).

The certificates name ``localhost`` only, so dialling ``127.0.0.1`` is the wrong host.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from streams.connections import kafka_kwargs, pg_connect, warehouse_from_settings
from streams.errors import ConfigurationError

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "not-the-password-0123"


def _wrong_password_file(tmp_path: Path) -> str:
    path = tmp_path / "wrong-password"
    path.write_text(WRONG_PASSWORD)
    return str(path)


async def _kafka_refusal(settings, caplog: pytest.LogCaptureFixture) -> str:  # type: ignore[no-untyped-def]
    """Start a producer that must be refused; return what aiokafka logged about why."""
    producer = AIOKafkaProducer(**kafka_kwargs(settings), request_timeout_ms=10_000)
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            await producer.start()
    await producer.stop()
    return caplog.text


async def test_kafka_refuses_a_wrong_password(secure, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    settings = secure.settings(
        "producer", HEALTHMATE_KAFKA_SASL_PASSWORD_FILE=_wrong_password_file(tmp_path))
    logged = await _kafka_refusal(settings, caplog)
    assert "SaslAuthenticationFailed" in logged and "invalid credentials" in logged
    assert WRONG_PASSWORD not in logged


async def test_kafka_refuses_a_plaintext_client_on_the_tls_listener(secure, caplog) -> None:  # type: ignore[no-untyped-def]
    settings = secure.settings("producer", HEALTHMATE_KAFKA_SECURITY_PROTOCOL="PLAINTEXT")
    logged = await _kafka_refusal(settings, caplog)
    # The TLS listener accepted the TCP connection and closed it on the plaintext request (a
    # port nobody listens on would say "Connect call failed" instead).
    assert f"Connection at {settings.kafka_bootstrap} closed" in logged
    assert "Connect call failed" not in logged


async def test_kafka_refuses_a_certificate_for_another_host(secure, caplog) -> None:  # type: ignore[no-untyped-def]
    bootstrap = secure.envs["producer"]["HEALTHMATE_KAFKA_BOOTSTRAP"].replace("localhost", "127.0.0.1")
    settings = secure.settings("producer", HEALTHMATE_KAFKA_BOOTSTRAP=bootstrap)
    logged = await _kafka_refusal(settings, caplog)
    assert "CERTIFICATE_VERIFY_FAILED" in logged and "not valid for '127.0.0.1'" in logged


async def test_postgres_refuses_a_wrong_password(secure, tmp_path) -> None:  # type: ignore[no-untyped-def]
    credentials, at_host = secure.settings("worker").pg_dsn_value.split("@", 1)
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(f"{credentials.rsplit(':', 1)[0]}:{WRONG_PASSWORD}@{at_host}")
    settings = secure.settings("worker", HEALTHMATE_PG_DSN_FILE=str(dsn_file))
    assert WRONG_PASSWORD in settings.pg_dsn_value  # the test really sends the wrong one
    refusal = 'password authentication failed for user "healthmate_app"'
    with pytest.raises(asyncpg.InvalidPasswordError, match=refusal) as refused:
        await pg_connect(settings)
    assert WRONG_PASSWORD not in str(refused.value)


async def test_postgres_refuses_a_plaintext_client(secure) -> None:  # type: ignore[no-untyped-def]
    settings = secure.settings("worker", HEALTHMATE_PG_SSLMODE="disable")
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await pg_connect(settings)


async def test_postgres_refuses_a_certificate_for_another_host(secure, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = secure.settings("worker")
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(settings.pg_dsn_value.replace("@localhost:", "@127.0.0.1:"))
    settings = secure.settings("worker", HEALTHMATE_PG_DSN_FILE=str(dsn_file))
    with pytest.raises(ssl.SSLCertVerificationError, match="not valid for '127.0.0.1'"):
        await pg_connect(settings)
    # the worker's warehouse stops with a configuration error instead of retrying forever
    with pytest.raises(ConfigurationError, match="warehouse TLS certificate refused: .*127.0.0.1"):
        await warehouse_from_settings(settings).start()
