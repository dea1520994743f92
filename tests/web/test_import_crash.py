"""The worker killed (SIGKILL) while it imports an upload (``POST /data-pipeline/imports``),
restarted, the file uploaded again: the warehouse holds every reading of the file once, and
the dead upload's spool folder does not stay behind (the restarted worker removes it).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from import_files import count_apple_readings, large_apple_export
from pipeline_support import assert_stored_once, end_offsets, wait_until_caught_up

from streams.connections import kafka_kwargs

# tests/web/conftest.py, as pytest loaded it (--import-mode=importlib gives it no importable name)
_web = next(m for m in list(sys.modules.values())
            if (getattr(m, "__file__", None) or "").endswith("tests/web/conftest.py"))
ApiWorker, Client, running_worker = _web.ApiWorker, _web.Client, _web.running_worker
wait_ready = _web._wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USER = "crash-upload-user"


@pytest.fixture
def crash_worker(kafka_bootstrap: str, pg_dsn: str, tmp_path: Path) -> Iterator[ApiWorker]:
    with running_worker(kafka_bootstrap, pg_dsn, tmp_path,
                        HEALTHMATE_IMPORT_SPOOL_DIR=str(tmp_path / "spool")) as worker:
        yield worker


def _spooled(spool: Path) -> list[Path]:
    return sorted(spool.iterdir()) if spool.exists() else []


async def _upload(client: Client, export: Path) -> dict:
    with export.open("rb") as body:
        reply = await client.call("POST", "/imports", role="operator", data=body,
                                  params={"filename": "export.xml"}, headers={"X-User-Id": USER})
    assert reply.status == 202, reply.body
    return reply.body  # type: ignore[no-any-return]


async def _until(check, what: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"not {what} within {timeout}s")


async def test_a_worker_killed_during_an_upload_import_stores_it_once_and_clears_the_spool(
        crash_worker: ApiWorker, tmp_path: Path) -> None:
    worker, settings = crash_worker, crash_worker.settings
    export = tmp_path / "export.xml"
    large_apple_export(export, 50_000_000)
    expected = count_apple_readings(export)
    spool = Path(worker.env["HEALTHMATE_IMPORT_SPOOL_DIR"])
    # force_close: no pooled connection to the killed worker is reused after its restart
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120),
                                     connector=aiohttp.TCPConnector(force_close=True)) as session:
        client = Client(session, worker)
        accepted = await _upload(client, export)

        async def published() -> int:
            return sum((await end_offsets(kafka_kwargs(settings), settings.raw_topic)).values())

        async def part_way() -> bool:
            status = (await client.call("GET", accepted["location"], role="operator")).body
            assert status["status"] in ("accepted", "running"), status
            return await published() >= 2

        await _until(part_way, "part-way through the import")
        worker.process.kill9()
        dead = _spooled(spool)
        assert [p.name for p in dead] == [accepted["import_id"].replace("-", "")]

        worker.process.start()
        wait_ready(worker)

        async def spool_empty() -> bool:
            return not _spooled(spool)

        await _until(spool_empty, "the dead upload's folder removed", timeout=20)

        again = await _upload(client, export)

        async def finished() -> dict | None:
            status = (await client.call("GET", again["location"], role="operator")).body
            return status if status["status"] not in ("accepted", "running") else None

        status = await _until(finished, "imported", timeout=90)
        assert status["status"] == "succeeded", status
        assert _spooled(spool) == []
    conn = await asyncpg.connect(settings.pg_migration_dsn_value)
    try:
        await wait_until_caught_up(settings, conn, alive=worker.process.alive)
        await assert_stored_once(conn, settings.warehouse_schema, expected)
    finally:
        await conn.close()
