"""Connection options from the settings: the one place that turns TLS and SASL settings
into client arguments, for every aiokafka client, the Faust app and every asyncpg connection;
and the check that a producer's raw topic is there before it sends.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from streams.config import Settings
from streams.errors import ConfigurationError
from streams.logs import quiet

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from streams.sink.warehouse import Warehouse


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """Verifies the broker's certificate and host name; None on a plaintext protocol."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def kafka_kwargs(settings: Settings) -> dict[str, Any]:
    """``bootstrap_servers`` and the security arguments for any aiokafka client."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
        "ssl_context": kafka_ssl_context(settings),
    }
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # the settings validator checks it
        kwargs.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                      sasl_plain_username=settings.kafka_sasl_username,
                      sasl_plain_password=settings.kafka_sasl_password.get_secret_value())
    return kwargs


def faust_broker_kwargs(settings: Settings) -> dict[str, Any]:
    """``broker`` and ``broker_credentials`` for ``faust.App`` (faust-streaming 0.15 passes
    SCRAM-SHA-256/512 and PLAIN through to aiokafka)."""
    import faust

    context = kafka_ssl_context(settings)
    credentials: Any = None
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None
        credentials = faust.SASLCredentials(
            username=settings.kafka_sasl_username, password=settings.kafka_sasl_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism, ssl_context=context)
    elif context is not None:
        credentials = faust.SSLCredentials(context)
    return {"broker": f"kafka://{settings.kafka_bootstrap}", "broker_credentials": credentials}


def pg_ssl(settings: Settings) -> ssl.SSLContext | str | None:
    """asyncpg's ``ssl`` argument; None leaves the DSN's own ``sslmode`` in charge."""
    mode = settings.pg_sslmode
    if mode in ("verify-ca", "verify-full"):
        context = ssl.create_default_context(cafile=settings.pg_ssl_rootcert)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = mode == "verify-full"
        return context
    return mode


def pg_connect_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``asyncpg.connect``/``create_pool`` besides the DSN."""
    ssl_arg = pg_ssl(settings)
    return {} if ssl_arg is None else {"ssl": ssl_arg}


async def pg_connect(settings: Settings, *, dsn: str | None = None, **kwargs: Any) -> Any:
    """One asyncpg connection with the configured TLS (to ``pg_dsn`` unless ``dsn`` is given)."""
    import asyncpg

    return await asyncpg.connect(dsn or settings.pg_dsn_value, **pg_connect_kwargs(settings), **kwargs)


def warehouse_from_settings(settings: Settings, *, pool_max: int | None = None) -> Warehouse:
    """The :class:`~streams.sink.warehouse.Warehouse` the settings describe (not started)."""
    from streams.sink.warehouse import Warehouse

    return Warehouse(settings.pg_dsn_value, settings.warehouse_schema,
                     pool_max=pool_max or settings.pg_pool_max,
                     migration_dsn=settings.pg_migration_dsn_value,
                     connect_kwargs=pg_connect_kwargs(settings),
                     pseudonym_key=settings.pseudonym_key_bytes)


#: How long a producer may take to find the raw topic before it counts as missing.
TOPIC_WAIT_S = 5.0


async def require_raw_topic(producer: AIOKafkaProducer, topic: str) -> None:
    """Fail within :data:`TOPIC_WAIT_S` when ``topic`` is missing or not ours to write, with
    :class:`~streams.errors.ConfigurationError` naming the fix, rather than at the first
    message, after the producer's 40 s of retries and a traceback. The started ``producer`` is
    stopped before that error: until then its background metadata requests would log the
    missing topic again."""
    # aiokafka.cluster logs each metadata answer without the topic, as an ERROR
    with quiet("aiokafka.cluster"):
        try:
            async with asyncio.timeout(TOPIC_WAIT_S):
                await producer.partitions_for(topic)
            return
        except (TimeoutError, KafkaError) as exc:
            failure = exc
        await producer.stop()
    if isinstance(failure, TopicAuthorizationFailedError):
        raise ConfigurationError(f"Kafka does not let this client use the raw topic {topic!r} "
                                 "(HEALTHMATE_KAFKA_* credentials, ACLs: python -m streams acls)")
    raise ConfigurationError(f"the raw topic {topic!r} does not exist (HEALTHMATE_RAW_TOPIC): "
                             "create it with python -m streams setup")
