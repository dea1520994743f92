"""``POST /data-pipeline/imports`` against a real worker: every refusal answers a clear 4xx
and leaves nothing in the spool; an accepted upload is imported into the warehouse, its
spool folder removed, and the raw user id appears in no audit row.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import orjson
import pytest
from import_files import apple_export, record, zip_bytes

from web.routes_imports import ImportAccepted, ImportState

# tests/web/conftest.py, as pytest loaded it (--import-mode=importlib gives it no importable name)
_web = next(m for m in list(sys.modules.values())
            if (getattr(m, "__file__", None) or "").endswith("tests/web/conftest.py"))
ApiWorker, Client, running_worker = _web.ApiWorker, _web.Client, _web.running_worker

pytestmark = pytest.mark.integration

USER = "PHI-upload-user-henriette@example.org"
LIMIT = 2_000_000
IDLE_S = 2
HEADER_S = 1
MIN_RATE = 20_000  # bytes/s after IDLE_S: a local upload is far faster, a trickle far slower


@pytest.fixture(scope="module")
def import_worker(kafka_bootstrap: str, pg_dsn: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[ApiWorker]:
    folder = tmp_path_factory.mktemp("import-worker")
    with running_worker(kafka_bootstrap, pg_dsn, folder, HEALTHMATE_IMPORT_SPOOL_DIR=str(folder / "spool"),
                        HEALTHMATE_IMPORT_MAX_UPLOAD_BYTES=str(LIMIT),
                        HEALTHMATE_IMPORT_MAX_UNCOMPRESSED_BYTES=str(20_000_000),
                        HEALTHMATE_IMPORT_MAX_COMPRESSION_RATIO="50",
                        HEALTHMATE_IMPORT_IDLE_TIMEOUT_S=str(IDLE_S),
                        HEALTHMATE_IMPORT_MIN_BYTES_PER_S=str(MIN_RATE),
                        HEALTHMATE_API_HEADER_TIMEOUT_S=str(HEADER_S)) as worker:
        yield worker


@pytest.fixture
async def uploads(import_worker: ApiWorker) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield Client(session, import_worker)


def _spooled(worker: ApiWorker) -> list[Path]:
    spool = Path(worker.env["HEALTHMATE_IMPORT_SPOOL_DIR"])
    return sorted(spool.rglob("*")) if spool.exists() else []


async def _chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // 65_536 + 1):
        yield b"<" * 65_536


EXPORT = apple_export(record("HeartRate", "61", "count/min", "2024-05-01 08:00:00 +0200")
                      + record("StepCount", "120", "count", "2024-05-01 08:00:00 +0200",
                               "2024-05-01 08:05:00 +0200")
                      + record("BodyMassIndex", "22.5", "count", "2024-05-01 08:00:00 +0200"))


@pytest.mark.parametrize(("body", "params", "status", "says"), [
    (b"x" * (LIMIT + 1), {}, 413, "upload over"),
    ("chunked", {}, 413, "upload over"),
    (zip_bytes({"apple_health_export/export.xml": b" " * 10_000_000}), {}, 413, "zip_bomb"),
    (zip_bytes({"a.zip": zip_bytes({"export.xml": EXPORT})}), {}, 422, "nested_archive"),
    (zip_bytes({"../../outside/export.xml": EXPORT}), {}, 422, "path_escape"),
    (apple_export("", doctype='<!DOCTYPE HealthData [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>\n'),
     {"filename": "export.xml"}, 422, "xml_bomb"),
    (b"%PDF-1.7 not an export", {"filename": "report.pdf"}, 415, "unknown_format"),
    (EXPORT, {"zone": "Mars/Base"}, 422, "request validation failed"),
], ids=["over-limit", "over-limit-chunked", "zip-bomb", "nested", "path-escape", "xml-bomb", "unknown",
        "zone"])
async def test_refused_uploads_answer_4xx_and_leave_nothing(uploads: Client, import_worker: ApiWorker,
                                                             body: object, params: dict, status: int,
                                                             says: str) -> None:
    data = _chunks(LIMIT + 10) if body == "chunked" else body
    reply = await uploads.call("POST", "/imports", role="operator", data=data, params=params,
                               headers={"X-User-Id": USER}, echoes="Mars/Base")
    assert reply.status == status, reply.body
    assert says in reply.body["message"] or says in str(reply.body.get("fields"))
    assert USER not in str(reply.body)
    assert _spooled(import_worker) == []


async def test_uploads_need_the_operator_role_and_a_user(uploads: Client) -> None:
    assert (await uploads.call("POST", "/imports", role="analyst", data=EXPORT,
                               headers={"X-User-Id": USER})).status == 403
    reply = await uploads.call("POST", "/imports", role="operator", data=EXPORT)
    assert reply.status == 422 and reply.body["fields"][0]["loc"] == ["header", "X-User-Id"]


async def test_an_accepted_upload_lands_in_the_warehouse(uploads: Client, import_worker: ApiWorker,
                                                         eventually) -> None:  # type: ignore[no-untyped-def]
    body = zip_bytes({"apple_health_export/export.xml": EXPORT,
                      "apple_health_export/export_cda.xml": b"<x/>"})
    reply = await uploads.call("POST", "/imports", role="operator", data=body, headers={"X-User-Id": USER})
    assert reply.status == 202, reply.body
    assert reply.body["formats"] == ["apple"] and reply.headers["Location"] == reply.body["location"]
    ImportAccepted.model_validate(reply.body)  # the OpenAPI document's schema of this answer

    async def finished() -> dict | None:
        status = (await uploads.call("GET", reply.body["location"], role="operator")).body
        return status if status["status"] not in ("accepted", "running") else None

    status = await eventually(finished, timeout=60)
    assert status["status"] == "succeeded", status
    ImportState.model_validate(status)
    assert status["bytes_read"] == status["bytes_total"] == len(body)
    export = next(f for f in status["files"] if f["format"] == "apple")
    assert (export["file"], export["readings"]) == ("upload:apple_health_export/export.xml", 3)
    assert _spooled(import_worker) == []
    settings = import_worker.settings
    conn = await asyncpg.connect(settings.pg_migration_dsn_value)
    try:
        schema = settings.warehouse_schema

        async def stored() -> list | None:
            rows = await conn.fetch(f'SELECT metric, value, unit, user_key FROM "{schema}".health_readings '
                                    "WHERE user_key = $1 ORDER BY metric", status["user_key"])
            return rows if len(rows) == 3 else None

        rows = await eventually(stored, timeout=30)
        assert [(r["metric"], r["value"], r["unit"]) for r in rows] == [
            ("body_mass_index", 22.5, "kg/m2"), ("heart_rate", 61.0, "/min"), ("steps", 120.0, "{steps}")]
        audit = await conn.fetch(f'SELECT * FROM "{schema}".audit_log WHERE action LIKE $1', "imports.%")
        assert audit and all(USER not in str(dict(a)) for a in audit)
        assert any(status["user_key"] in str(a["target"]) for a in audit)
    finally:
        await conn.close()
    assert USER not in import_worker.process.log_path.read_text(errors="replace")
    await asyncio.sleep(0)


async def _raw_upload(worker: ApiWorker, user_id: bytes, body: bytes, declared: int
                      ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An upload sent byte for byte (a header aiohttp's client would not send), ``declared``
    long; returns the connection (the answer arrives on its reader)."""
    port = int(worker.env["HEALTHMATE_WEB_PORT"])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /data-pipeline/imports?filename=export.xml HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Authorization: Bearer " + worker.token("operator").encode() + b"\r\n"
                 b"X-User-Id: " + user_id + b"\r\nContent-Length: %d\r\n\r\n" % declared + body)
    await writer.drain()
    return reader, writer


async def _answer(reader: asyncio.StreamReader, timeout: float) -> tuple[int, dict]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return int(head.split(b" ")[1]), orjson.loads(await reader.readexactly(length))


async def test_a_user_id_that_is_not_utf8_is_refused_with_422(import_worker: ApiWorker) -> None:
    reader, writer = await _raw_upload(import_worker, b"PHI-henriette-\xff", EXPORT, len(EXPORT))
    status, body = await _answer(reader, 30)
    writer.close()
    assert status == 422, body  # it was a 500: the pseudonym cannot be computed of a lone surrogate
    assert body["fields"][0]["loc"] == ["header", "X-User-Id"]
    assert "henriette" not in str(body) and _spooled(import_worker) == []


async def test_a_stalled_upload_answers_408_and_frees_the_import_slot(uploads: Client,
                                                                      import_worker: ApiWorker) -> None:
    stalled, writer = await _raw_upload(import_worker, USER.encode(), EXPORT[:100], len(EXPORT))
    await asyncio.sleep(0.5)
    busy = await uploads.call("POST", "/imports", role="operator", data=EXPORT, headers={"X-User-Id": USER},
                              params={"filename": "export.xml"})
    assert busy.status == 429, busy.body  # the only slot (HEALTHMATE_IMPORT_CONCURRENCY=1) is taken
    status, body = await _answer(stalled, IDLE_S + 10)
    writer.close()
    assert (status, body["error"]) == (408, "request_timeout"), body
    assert _spooled(import_worker) == []
    after = await uploads.call("POST", "/imports", role="operator", data=EXPORT, headers={"X-User-Id": USER},
                               params={"filename": "export.xml"})
    assert after.status == 202, after.body


async def test_a_trickled_upload_answers_408_and_frees_the_import_slot(uploads: Client,
                                                                       import_worker: ApiWorker) -> None:
    """A byte every 0.3 s is never idle for IDLE_S, so only the idle timeout let it hold the
    only import slot for as long as the file lasted (hours for a real export)."""
    await _until_the_slot_is_free(uploads)
    trickled, writer = await _raw_upload(import_worker, USER.encode(), EXPORT[:100], len(EXPORT))

    async def trickle() -> None:
        for i in range(100, len(EXPORT)):
            writer.write(EXPORT[i:i + 1])
            await writer.drain()
            await asyncio.sleep(0.3)

    sending = asyncio.create_task(trickle())
    started = asyncio.get_running_loop().time()
    try:
        status, body = await _answer(trickled, IDLE_S + 5)
    finally:
        sending.cancel()
        writer.close()
    assert asyncio.get_running_loop().time() - started < IDLE_S + 5
    assert (status, body["error"]) == (408, "request_timeout"), body
    assert "slower than" in body["message"] and USER not in str(body)
    assert _spooled(import_worker) == []
    after = await uploads.call("POST", "/imports", role="operator", data=EXPORT, headers={"X-User-Id": USER},
                               params={"filename": "export.xml"})
    assert after.status == 202, after.body


async def _until_the_slot_is_free(uploads: Client) -> None:
    """Until an import started by an earlier test has ended (a file of no format answers 415
    rather than 429 once the only slot is free)."""
    for _ in range(120):
        probe = await uploads.call("POST", "/imports", role="operator", data=b"%PDF-1.7",
                                   headers={"X-User-Id": USER}, params={"filename": "report.pdf"})
        if probe.status != 429:
            return
        await asyncio.sleep(0.5)
    raise AssertionError("the import slot stayed busy for 60 s")


async def test_request_heads_that_never_end_are_closed(uploads: Client, import_worker: ApiWorker) -> None:
    """Slowloris on the worker's server: heads trickled a byte every 0.2 s, never finished,
    kept their connections open for an hour (aiohttp's default keep-alive); each is now closed
    about HEADER_S after its first byte, unanswered, and the server goes on serving."""
    port = int(import_worker.env["HEALTHMATE_WEB_PORT"])
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(10)]
    head = b"POST /data-pipeline/imports HTTP/1.1\r\nHost: 127.0.0.1\r\nX-User-Id: " + USER.encode()

    async def trickle(writer: asyncio.StreamWriter) -> None:
        try:
            for i in range(len(head)):
                writer.write(head[i:i + 1])
                await writer.drain()
                await asyncio.sleep(0.2)
        except ConnectionError:
            pass

    async def until_closed(reader: asyncio.StreamReader) -> bytes:
        try:
            return await asyncio.wait_for(reader.read(), HEADER_S + 4)
        except ConnectionResetError:  # closed while our bytes were still arriving: a reset
            return b""

    sending = [asyncio.create_task(trickle(writer)) for _, writer in connections]
    try:
        closed = await asyncio.gather(*(until_closed(reader) for reader, _ in connections))
    finally:
        for task in sending:
            task.cancel()
        for _, writer in connections:
            writer.close()
    assert closed == [b""] * len(connections)
    assert (await uploads.call("GET", "/pipeline/status", role="viewer")).status == 200
    log = import_worker.process.log_path.read_text(errors="replace")
    assert "request head was incomplete" in log and USER not in log
