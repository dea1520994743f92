"""``POST /data-pipeline/imports``: an app's backend uploads a user's export; ``GET …/{id}``.

The body is the file itself (an Apple Health ``export.zip``/``export.xml``, a ``.fit``, a
zip of them, a Fitbit Takeout zip or JSON file, a Dexcom Clarity CSV), streamed to the spool
on disk, never held in memory. The user id travels in the ``X-User-Id`` header (never in the
URL, which proxies log); it is pseudonymised before it reaches the audit row, a log or the
status. Answers, in this order:

- 429 when ``HEALTHMATE_IMPORT_CONCURRENCY`` imports are already running;
- 422 for bad parameters (no user id, an unknown zone);
- 413 when the body is over ``HEALTHMATE_IMPORT_MAX_UPLOAD_BYTES`` (by its Content-Length,
  or as soon as the streamed body passes it) or is a zip bomb;
- 408 when the body stops arriving for ``HEALTHMATE_IMPORT_IDLE_TIMEOUT_S``, or arrives slower
  than ``HEALTHMATE_IMPORT_MIN_BYTES_PER_S`` on average after that allowance
  (:mod:`web.body_pace`: a stalled or trickling client would otherwise hold an import slot
  for as long as it keeps the connection open);
- 422 for a nested archive, an entry path that leaves the archive, an XML bomb;
- 415 when nothing in it is of a known format;
- else 202 with the import id and ``Location``; the import runs in the background
  (:mod:`web.imports`) and ``GET /data-pipeline/imports/{import_id}`` shows its progress and
  the per-file summaries of ``python -m streams import``.

Whatever is refused is deleted before the answer; an accepted upload when its import ends.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from pydantic import Field

from streams.domain.text import is_utf8
from streams.errors import ImportFileError, ImportRefused
from streams.importers.base import ImportContext
from streams.importers.formats import FORMATS
from streams.importers.run import archive_limits
from streams.importers.upload import inspect_upload, spool_name
from web.api import API_PREFIX, Api, Call, Reply, Route
from web.auth import Permission
from web.body_pace import BodyPace
from web.errors import ApiError, InvalidInput, NotFound, PayloadTooLarge, TooManyRequests
from web.imports import ImportJobs, ImportStatus

__all__ = ["ROUTES", "ImportJobs"]
from web.models import Strict
from web.responses import Closed

USER_HEADER = "X-User-Id"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CHUNK = 1 << 20


class UnsupportedMediaType(ApiError):
    status, code, outcome = 415, "unsupported_media_type", "invalid"


class ImportQuery(Strict):
    format: Literal["auto", "apple", "fit", "fitbit", "dexcom"] = Field(
        "auto", description="The file's format; `auto` detects it per file.")
    zone: str | None = Field(None, max_length=64,
                             description="IANA zone of naive local times (Fitbit, Dexcom).")
    source: str | None = Field(None, min_length=1, max_length=64, description="The source to publish.")
    salvage: bool = Field(False, description="Publish what a damaged FIT file held before the damage.")
    filename: str | None = Field(None, max_length=255, description="The file's name (helps detection).")


class ImportPath(Strict):
    import_id: uuid.UUID


class ImportAccepted(Closed):
    import_id: uuid.UUID
    status: Literal["accepted"]
    formats: list[str] = Field(description="The formats found in the upload.")
    bytes: int
    location: str


class FileResult(Closed):
    file: str
    format: str | None
    messages: int
    readings: int
    skipped: dict[str, int] = Field(description="Counts by kind of what was deliberately not imported.")
    seconds: float
    error: str | None


class ImportState(Closed):
    import_id: uuid.UUID
    user_key: str = Field(description="The user's pseudonym (never the raw id).")
    status: Literal["accepted", "running", "succeeded", "failed", "cancelled"]
    format: str
    bytes_total: int
    bytes_read: int
    progress: float
    files: list[FileResult]
    error: str | None
    accepted_at: float
    finished_at: float | None


def jobs(api: Api) -> ImportJobs:
    return api.extensions["imports"]  # type: ignore[no-any-return]


def _context(request: web.Request, query: ImportQuery) -> ImportContext:
    user_id = request.headers.get(USER_HEADER, "")
    problems = []
    if not user_id.strip() or len(user_id) > 256 or _CONTROL.search(user_id) or not is_utf8(user_id):
        problems.append({"loc": ["header", USER_HEADER], "type": "value_error",
                         "msg": "1-256 characters of UTF-8, no control characters"})
    zone = None
    if query.zone is not None:
        try:
            zone = ZoneInfo(query.zone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append({"loc": ["query", "zone"], "msg": "not an IANA time zone", "type": "value_error"})
    if query.source is not None and _CONTROL.search(query.source):
        problems.append({"loc": ["query", "source"], "msg": "control characters", "type": "value_error"})
    if problems:
        raise InvalidInput("request validation failed", fields=problems)
    return ImportContext(user_id=user_id, zone=zone, source=query.source, salvage=query.salvage)


async def create(api: Api, call: Call) -> Reply:
    request: web.Request = call.body
    query: ImportQuery = call.query
    ctx = _context(request, query)
    import_id = uuid.uuid4()
    user_key = api.pseudonymise(ctx.user_id)
    call.target = f"user_key={user_key} import_id={import_id}"
    service, limit = jobs(api), api.settings.import_max_upload_bytes
    if service.running() + service.receiving >= api.settings.import_concurrency:
        raise TooManyRequests("an import is already running; retry later", retry_after=30)
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"upload over {limit} bytes")
    folder = service.folder(import_id)
    accepted = False
    service.receiving += 1
    try:
        path = folder / spool_name(query.filename)
        pace = BodyPace(api.settings.import_idle_timeout_s, api.settings.import_min_bytes_per_s)
        size = await _receive(request, path, limit, pace)
        try:
            formats = await asyncio.to_thread(inspect_upload, path, archive_limits(api.settings),
                                              query.format)
        except ImportRefused as exc:
            raise _refusal(exc) from None
        except ImportFileError as exc:
            raise InvalidInput(str(exc)) from None
        status = ImportStatus(import_id, user_key, query.format, size)
        service.start_import(status, path, ctx)
        accepted = True
    finally:
        service.receiving -= 1
        if not accepted:
            service.discard(import_id)
    location = f"{API_PREFIX}/imports/{import_id}"
    return Reply({"import_id": str(import_id), "status": "accepted", "formats": sorted(set(formats)),
                  "bytes": size, "location": location}, status=202, headers={"Location": location})


async def _receive(request: web.Request, path: Any, limit: int, pace: BodyPace) -> int:
    size = 0
    with path.open("xb") as out:
        async for chunk in pace.chunks(request.content, _CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"upload over {limit} bytes")
            await asyncio.to_thread(out.write, chunk)
    return size


def _refusal(exc: ImportRefused) -> ApiError:
    message = f"{exc.kind}: {exc}"
    if exc.kind == "zip_bomb":
        return PayloadTooLarge(message)
    if exc.kind == "unknown_format":
        return UnsupportedMediaType(message)
    return InvalidInput(message)


async def get_import(api: Api, call: Call) -> dict[str, Any]:
    status = jobs(api).statuses.get(call.path.import_id)
    if status is None:
        raise NotFound(f"no import {call.path.import_id} on this worker")
    call.target = f"user_key={status.user_key} import_id={status.import_id}"
    return status.as_json()


ROUTES = [
    Route("POST", "/imports", "imports.create",
          "Upload a vendor export (the body is the file) for the user in `X-User-Id`; 202 with the "
          "import id and Location. Refused: over the size limit or a zip bomb (413), a nested archive, "
          "an entry path leaving the archive or an XML bomb (422), no known format (415), the body "
          "stopped arriving or trickled (408).",
          create, Permission.IMPORT, query_model=ImportQuery, status=202, tag="imports",
          errors=(408, 415, 429), headers=("Location",), stream_body=True, response=ImportAccepted,
          request_headers=((USER_HEADER, "Whose data this is (pseudonymised before any record)."),)),
    Route("GET", "/imports/{import_id}", "imports.get",
          "An upload's progress (bytes read of total) and, per file, the import summary.",
          get_import, Permission.IMPORT, path_model=ImportPath, tag="imports", errors=(404,),
          response=ImportState),
]
assert set(FORMATS) <= set(ImportQuery.model_fields["format"].annotation.__args__)  # type: ignore[union-attr]
