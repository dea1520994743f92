"""What every command line (``streams``, ``batch``, ``web``) shares.

- :func:`load_settings`: the settings for a person at a terminal. On the local stack (Kafka
  and PostgreSQL on loopback, no pseudonym key, ``HEALTHMATE_DEV_MODE`` not set at all) the
  development configuration is used, as ``make run`` does, and one line on stderr says so.
- :func:`guarded`: start-up failures become one line on stderr (what is wrong, which
  setting, what to do) and an exit status: 2 for configuration, 3 for a dependency that
  cannot be reached. Anything else is a bug and keeps its traceback.
- :func:`preflight`: reach Kafka and PostgreSQL once before doing any work.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn
from urllib.parse import urlsplit

import asyncpg
from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError
from pydantic_settings import SettingsError

from streams.config import Settings, cli_settings
from streams.connections import kafka_kwargs, pg_connect
from streams.errors import ConfigurationError
from streams.logs import quiet

EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3
CONNECT_TIMEOUT_S = 5.0


class StartupError(Exception):
    """A failure a person can act on; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_CONFIG) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def fail(message: str, code: int = EXIT_CONFIG) -> NoReturn:
    sys.stderr.write(f"healthmate: {message}\n")
    raise SystemExit(code)


def load_settings() -> Settings:
    """The settings, or one line and exit 2; announces the dev configuration when used."""
    with guarded():
        settings, dev_defaulted = cli_settings()
    if dev_defaulted:
        sys.stderr.write("healthmate: local stack, using the development configuration "
                         "(HEALTHMATE_DEV_MODE=true, fixed non-secret keys); set HEALTHMATE_DEV_MODE=false "
                         "to refuse it\n")
    return settings


@contextmanager
def guarded() -> Iterator[None]:
    """Turn known start-up failures raised inside the block into one line and an exit."""
    try:
        yield
    except StartupError as exc:
        fail(exc.message, exc.code)
    except (ValidationError, SettingsError, ConfigurationError) as exc:
        fail(describe_settings_error(exc))


def describe_settings_error(exc: Exception) -> str:
    """One line naming the ``HEALTHMATE_*`` variables at fault; never echoes their values."""
    if isinstance(exc, SettingsError):
        match = re.search(r'field "(\w+)"', str(exc))
        name = match[1] if match else "?"
        return (f"configuration error: HEALTHMATE_{name.upper()} is not valid JSON; "
                f"fix it (default: {_default_json(name)}) or unset it")
    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors(include_input=False, include_url=False):
            where = [str(p) for p in error["loc"]]
            msg = error["msg"].removeprefix("Value error, ")
            parts.append(f"HEALTHMATE_{where[0].upper()}{''.join(f'[{p}]' for p in where[1:])}: {msg}"
                         if where else msg)
        return "configuration error: " + "; ".join(parts) + "; fix the variable or unset it for the default"
    return f"configuration error: {exc}"


def one_line(exc: Exception) -> str:
    """A pydantic error's messages (never its input values), or the error's first line."""
    if isinstance(exc, ValidationError):
        return "; ".join(e["msg"].removeprefix("Value error, ")
                         for e in exc.errors(include_input=False, include_url=False))
    return str(exc).splitlines()[0]


def _default_json(name: str) -> str:
    field = Settings.model_fields.get(name)
    if field is None:
        return "see README"
    value = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    import orjson

    return orjson.dumps(value).decode()


def run(coroutine: Any) -> Any:
    """``asyncio.run`` with connection failures turned into one line and exit 3 (or 2)."""
    with guarded():
        try:
            return asyncio.run(coroutine)
        except (TimeoutError, KafkaConnectionError, asyncpg.PostgresError, OSError) as exc:
            raise _connection_error(exc) from None


def _connection_error(exc: BaseException, settings: Settings | None = None) -> StartupError:
    if isinstance(exc, KafkaConnectionError):
        return StartupError(f"Kafka is unreachable at {_bootstrap(settings)} (HEALTHMATE_KAFKA_BOOTSTRAP): "
                            "start it (make stack-up) or point the setting at a running broker",
                            EXIT_UNREACHABLE)
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return StartupError("PostgreSQL refused the login (HEALTHMATE_PG_DSN): fix the user or password "
                            "in the DSN", EXIT_CONFIG)
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return StartupError("PostgreSQL has no such database (HEALTHMATE_PG_DSN): create it or fix the "
                            "database name in the DSN", EXIT_CONFIG)
    if isinstance(exc, asyncpg.PostgresError):
        return StartupError(f"PostgreSQL refused the connection (HEALTHMATE_PG_DSN): {type(exc).__name__}",
                            EXIT_UNREACHABLE)
    return StartupError(f"PostgreSQL is unreachable at {_pg_address(settings)} (HEALTHMATE_PG_DSN): start "
                        "it (make stack-up) or point the setting at a running server", EXIT_UNREACHABLE)


def _bootstrap(settings: Settings | None) -> str:
    return settings.kafka_bootstrap if settings else "the configured bootstrap servers"


def _pg_address(settings: Settings | None) -> str:
    if settings is None:
        return "the configured address"
    parts = urlsplit(settings.pg_dsn_value)
    return f"{parts.hostname or '?'}:{parts.port or 5432}"


def preflight(settings: Settings, *, kafka: bool = True, warehouse: bool = True) -> None:
    """Reach Kafka and PostgreSQL once; one line and exit 3 (2 for a refused login) if not."""

    async def reach() -> None:
        if kafka:
            timeout_ms = int(CONNECT_TIMEOUT_S * 1000)
            client = AIOKafkaClient(**kafka_kwargs(settings), request_timeout_ms=timeout_ms)
            try:
                await client.bootstrap()
            except KafkaConnectionError as exc:
                raise _connection_error(exc, settings) from None
            finally:
                await client.close()
        if warehouse:
            try:
                conn = await pg_connect(settings, timeout=CONNECT_TIMEOUT_S)
            except (TimeoutError, asyncpg.PostgresError, OSError) as exc:
                raise _connection_error(exc, settings) from None
            await conn.close()

    with quiet("aiokafka"), guarded():  # it logs every refused connect on its own
        asyncio.run(reach())
