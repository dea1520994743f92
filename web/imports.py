"""Uploaded imports running in the worker: the spool, the background thread, the status.

Each accepted upload lives in its own folder ``<HEALTHMATE_IMPORT_SPOOL_DIR>/<import id>/``
(mode 0700) until its import ends, whatever the outcome; the folder is removed then, and
when the worker stops (running imports are cancelled first). A worker that dies (SIGKILL, a
crash) cannot remove its folders, so each folder holds a lock file that its worker keeps
locked (``flock``) while it holds the upload; the kernel drops the lock when the process
dies. A worker clears, as it starts, the folders of its spool that nobody holds: never
another live worker's upload, when several share one spool. An import runs in a thread
with its own event loop and producer, so parsing a large export never stalls the worker's
ingest loop. Statuses are kept in memory (the last :data:`KEPT` finished ones): a restarted
worker does not know earlier imports.

The raw user id stays inside the import's :class:`~streams.importers.base.ImportContext`;
statuses, logs and audit rows carry the import id and the user's pseudonym only.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import re
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
from streams.errors import ConfigurationError, ImportCancelled, ImportStopped
from streams.importers.base import ImportContext
from streams.importers.packing import FileSummary
from streams.importers.run import ByteCounter, KafkaSink, import_paths

log = logging.getLogger(__name__)

KEPT = 100
#: The lock file inside each upload's folder (see the module docstring).
LOCK_FILE = ".lock"
#: A folder without a lock file this much older than now is stale too: its worker died
#: between making the folder and locking it.
UNLOCKED_GRACE_S = 60.0
_STAGING = ".new-"
_FOLDER_NAME = re.compile(r"(?:\.new-)?[0-9a-f]{32}")


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
        self._locks: dict[uuid.UUID, int] = {}  # import id -> the open, locked lock file

    def running(self) -> int:
        return sum(1 for t in self.threads.values() if t.is_alive())

    def folder(self, import_id: uuid.UUID) -> Path:
        """A new upload's folder, locked from birth: made under a staging name, locked, then
        renamed (the lock follows the file), so no worker ever sees it unlocked."""
        self.spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging, folder = self.spool / f"{_STAGING}{import_id.hex}", self.spool / import_id.hex
        staging.mkdir(mode=0o700)
        try:
            fd = os.open(staging / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            self._locks[import_id] = fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            staging.rename(folder)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            self.discard(import_id)
            raise
        return folder

    def discard(self, import_id: uuid.UUID) -> None:
        shutil.rmtree(self.spool / import_id.hex, ignore_errors=True)
        fd = self._locks.pop(import_id, None)
        if fd is not None:
            os.close(fd)  # after the removal: the folder is never there unlocked

    def clear_stale(self) -> int:
        """Remove the upload folders of this spool that no live worker holds (their worker
        died mid-import); returns how many. Only names this class makes are touched."""
        removed = 0
        entries = list(self.spool.iterdir()) if self.spool.is_dir() else []
        for entry in entries:
            if _FOLDER_NAME.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink() \
                    and _held_by_nobody(entry):
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        return removed

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
        except (ImportStopped, ConfigurationError) as exc:  # one line naming the cause, no value
            status.status, status.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a background thread has nobody else to tell
            status.status, status.error = "failed", f"import failed: {type(exc).__name__}"
        finally:
            status.finished_at = time.time()
            self.discard(status.import_id)
            self.threads.pop(status.import_id, None)
            log.info("import %s %s: %d files", status.import_id, status.status, len(status.files))

    async def on_start(self) -> None:
        removed = await asyncio.to_thread(self.clear_stale)
        if removed:
            log.warning("removed %d upload(s) left in the import spool by a worker that died during "
                        "their import; upload them again (what was published is stored once)", removed)

    async def on_stop(self) -> None:
        self._stop.set()
        for thread in list(self.threads.values()):
            await asyncio.to_thread(thread.join, 10)


def _held_by_nobody(folder: Path) -> bool:
    """Whether no process holds ``folder``'s lock (or, without a lock file, it is older than
    :data:`UNLOCKED_GRACE_S`)."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDWR)
    except FileNotFoundError:
        try:
            return time.time() - folder.stat().st_mtime > UNLOCKED_GRACE_S
        except FileNotFoundError:
            return False  # removed meanwhile by its own worker
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live worker holds it (BlockingIOError), or the lock cannot be tested
    finally:
        os.close(fd)  # releases the lock taken just now
    return True
