"""Uploaded imports running in the worker: the spool, the background thread, the status.

Each accepted upload lives in its own folder ``<HEALTHMATE_IMPORT_SPOOL_DIR>/<import id>/``
(mode 0700) until its import ends, whatever the outcome; the folder is removed then, and
when the worker stops (running imports are cancelled first). An import runs in a thread
with its own event loop and producer, so parsing a large export never stalls the worker's
ingest loop. Statuses are kept in memory (the last :data:`KEPT` finished ones): a restarted
worker does not know earlier imports.

The raw user id stays inside the import's :class:`~streams.importers.base.ImportContext`;
statuses, logs and audit rows carry the import id and the user's pseudonym only.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mode import Service

from streams.config import Settings
from streams.errors import ImportCancelled
from streams.importers.base import ImportContext
from streams.importers.packing import FileSummary
from streams.importers.run import ByteCounter, KafkaSink, import_paths

log = logging.getLogger(__name__)

KEPT = 100


@dataclass
class ImportStatus:
    import_id: uuid.UUID
    user_key: str
    format: str
    bytes_total: int
    status: str = "accepted"  # accepted | running | succeeded | failed | cancelled
    bytes_read: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    accepted_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"import_id": str(self.import_id), "user_key": self.user_key, "status": self.status,
                "format": self.format, "bytes_total": self.bytes_total, "bytes_read": self.bytes_read,
                "progress": round(self.bytes_read / self.bytes_total, 4) if self.bytes_total else 1.0,
                "files": self.files, "error": self.error, "accepted_at": self.accepted_at,
                "finished_at": self.finished_at}


class ImportJobs(Service):
    """The uploads this worker is importing or has imported (see the module docstring)."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.spool = Path(settings.import_spool_dir)
        self.statuses: OrderedDict[uuid.UUID, ImportStatus] = OrderedDict()
        self.threads: dict[uuid.UUID, threading.Thread] = {}
        self.receiving = 0  # uploads being received (they count against the concurrency cap)
        self._stop = threading.Event()

    def running(self) -> int:
        return sum(1 for t in self.threads.values() if t.is_alive())

    def folder(self, import_id: uuid.UUID) -> Path:
        folder = self.spool / import_id.hex
        folder.mkdir(parents=True, mode=0o700)
        return folder

    def discard(self, import_id: uuid.UUID) -> None:
        shutil.rmtree(self.spool / import_id.hex, ignore_errors=True)

    def start_import(self, status: ImportStatus, path: Path, ctx: ImportContext) -> None:
        self.statuses[status.import_id] = status
        while len(self.statuses) > KEPT:
            oldest = next(iter(self.statuses))
            if self.statuses[oldest].finished_at is None:
                break
            self.statuses.popitem(last=False)
        thread = threading.Thread(target=self._run, args=(status, path, ctx), daemon=True,
                                  name=f"import-{status.import_id.hex[:8]}")
        self.threads[status.import_id] = thread
        thread.start()

    def _run(self, status: ImportStatus, path: Path, ctx: ImportContext) -> None:
        def progress(done: int) -> None:
            if self._stop.is_set():
                raise ImportCancelled("the worker is stopping")
            status.bytes_read = min(done, status.bytes_total)

        def report(summary: FileSummary) -> None:
            entry = summary.as_json()
            entry["file"] = Path(entry["file"].replace(str(path.parent), "", 1).lstrip("/")).as_posix()
            status.files.append(entry)

        async def go() -> None:
            sink = KafkaSink(self.settings)
            await sink.start()
            try:
                await import_paths([path], ctx, self.settings, sink, fmt=status.format,
                                   counter=ByteCounter(progress), report=report)
            finally:
                await sink.close()

        status.status = "running"
        try:
            asyncio.run(go())
            status.status = "failed" if any(f["error"] for f in status.files) else "succeeded"
        except ImportCancelled:
            status.status, status.error = "cancelled", "the worker stopped during the import"
        except Exception as exc:  # noqa: BLE001 - a background thread has nobody else to tell
            status.status, status.error = "failed", f"import failed: {type(exc).__name__}"
        finally:
            status.finished_at = time.time()
            self.discard(status.import_id)
            self.threads.pop(status.import_id, None)
            log.info("import %s %s: %d files", status.import_id, status.status, len(status.files))

    async def on_stop(self) -> None:
        self._stop.set()
        for thread in list(self.threads.values()):
            await asyncio.to_thread(thread.join, 10)
