"""PostgreSQL becomes unreachable mid-stream: the sink backs off and retries, the worker
keeps running, and once the warehouse is back every reading is stored exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import pytest
from pipeline_support import wait_until_caught_up
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from streams.ingest import IngestService
from streams.metrics import Metrics
from streams.rules import rules_from_settings
from streams.sink.migrations import quote_ident
from streams.sink.warehouse import Warehouse
from streams.synthetic import SyntheticReadings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class CuttableProxy:
    """A loopback TCP proxy in front of PostgreSQL whose link can be cut and restored."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.down = False
        self.links: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.down:
            client_w.close()
            return
        server_r, server_w = await asyncio.open_connection(*self.target)
        self.links |= {client_w, server_w}
        await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()
        self.links.discard(writer)

    def cut(self) -> None:
        self.down = True
        for writer in list(self.links):
            writer.close()

    def restore(self) -> None:
        self.down = False

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_sink_survives_a_warehouse_outage_without_loss_or_duplicates(
    pipeline_settings, raw_producer, pg, pg_dsn
):
    proxy = CuttableProxy("127.0.0.1", 5432)
    port = await proxy.start()
    proxied_dsn = pg_dsn.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
    assert proxied_dsn != pg_dsn
    settings = pipeline_settings.model_copy(update={
        "pg_dsn": SecretStr(proxied_dsn), "sink_retry_initial_s": 0.1, "sink_retry_max_s": 0.5})
    generator = SyntheticReadings(datetime.now(UTC), seed=31)
    first, second = list(generator.messages(1500)), list(generator.messages(1500))
    metrics = Metrics(CollectorRegistry())
    service = IngestService(settings, rules_from_settings(settings),
                            Warehouse(proxied_dsn, settings.warehouse_schema), metrics)
    s = quote_ident(settings.warehouse_schema)
    await service.start()
    try:
        for m in first:
            await raw_producer.send(settings.raw_topic, m.value, key=m.key)
        await raw_producer.flush()
        await wait_until_caught_up(settings, pg, timeout=60)

        proxy.cut()
        for m in second:
            await raw_producer.send(settings.raw_topic, m.value, key=m.key)
        await raw_producer.flush()
        await asyncio.sleep(3)
        during_outage = await pg.fetchval(f"SELECT count(*) FROM {s}.health_readings")
        assert during_outage == 1500, "nothing can be stored while the warehouse is unreachable"
        assert metrics.sink_errors._value.get() > 0, "the sink never noticed the outage"
        assert service.crash_reason is None

        proxy.restore()
        await wait_until_caught_up(settings, pg, timeout=60)
    finally:
        await service.stop()
        await proxy.stop()

    total, distinct = await pg.fetchrow(
        f"SELECT count(*), count(DISTINCT event_id) FROM {s}.health_readings")
    assert (total, distinct) == (3000, 3000)
