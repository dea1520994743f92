"""Read files with their readers and publish what they yield: the importer as a producer.

:func:`import_paths` walks each path (file, folder or zip, :mod:`streams.importers.archive`),
picks each entry's reader (:mod:`streams.importers.formats`), packs the readings into
envelopes (:class:`~streams.importers.packing.Packer`) and hands them to a sink: the raw topic
(:class:`KafkaSink`, an idempotent producer with ``acks=all``, keyed by the user id) or, for a
dry run, a file of JSON lines (:class:`LinesSink`). The worker judges every message as it
judges any other; there is no second validation path.

Guarantees:

- a file that cannot be read gives a summary with ``error`` and the other files still go.
  What a streamed file (Apple, Dexcom) published before its damage stays published:
  importing the repaired file again stores only what is new (event ids come from content).
  A FIT file is all or nothing: its messages are held until its reader finishes, and dropped
  on damage unless ``ctx.salvage``;
- where the messages go failing (Kafka refusing them or out of reach past the producer's
  timeout, a dry run's output closed) stops the whole import with
  :class:`~streams.errors.ImportStopped` (:class:`~streams.errors.PublishFailed` for Kafka):
  no file is blamed, and the other files would fail the same way. :meth:`KafkaSink.start`
  refuses a raw topic that does not exist (:class:`~streams.errors.ConfigurationError`) in
  :data:`~streams.connections.TOPIC_WAIT_S` rather than at the first message, after the producer's 40 s;
- memory is bounded: one envelope (at most ``max_batch_readings`` readings and
  ``max_message_bytes``), at most :data:`MAX_IN_FLIGHT` unacknowledged messages and
  :data:`MAX_IN_FLIGHT_BYTES` of them (the producer holds each until Kafka acknowledges it: a
  slow broker must not let 256 envelopes of 1 MiB pile up), and what a reader holds (a FIT
  file's messages);
- the summaries and errors never carry a value from a file, nor the user id.
"""

from __future__ import annotations

import asyncio
import io
import logging
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams.config import Settings
from streams.connections import kafka_kwargs, require_raw_topic
from streams.errors import ImportFileError, ImportStopped, PublishFailed
from streams.importers.archive import ArchiveLimits, Entry, entries
from streams.importers.base import ImportContext, Skipped
from streams.importers.formats import READERS, detect
from streams.importers.packing import FileSummary, Message, Packer

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 256
MAX_IN_FLIGHT_BYTES = 32 * 1024 * 1024
#: Formats whose files are published only once read to the end (small files; see above).
ATOMIC_FORMATS = frozenset({"fit"})


class Sink(Protocol):
    async def send(self, message: Message) -> None: ...

    async def flush(self) -> None:
        """Return once every message sent so far is taken (a file's summary waits for it)."""

    async def close(self) -> None: ...


class KafkaSink:
    """The raw topic, through an idempotent producer (``acks=all``)."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.raw_topic
        self.producer = AIOKafkaProducer(**kafka_kwargs(settings), acks="all", enable_idempotence=True,
                                         linger_ms=20, max_request_size=settings.max_message_bytes + 65_536)
        self._pending: list[asyncio.Future[Any]] = []
        self._pending_bytes = 0

    async def start(self) -> None:
        await self.producer.start()
        await require_raw_topic(self.producer, self.topic)  # stops the producer if it fails

    async def send(self, message: Message) -> None:
        try:
            self._pending.append(await self.producer.send(self.topic, message.value, key=message.key))
        except KafkaError as exc:
            raise _publish_failed(exc) from None
        self._pending_bytes += len(message.value)
        if len(self._pending) >= MAX_IN_FLIGHT or self._pending_bytes >= MAX_IN_FLIGHT_BYTES:
            await self.flush()

    async def flush(self) -> None:
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        outcomes = await asyncio.gather(*pending, return_exceptions=True)
        failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if isinstance(failed, KafkaError):
            raise _publish_failed(failed)
        if failed is not None:
            raise failed

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            await self.producer.stop()


def _publish_failed(exc: KafkaError) -> PublishFailed:
    return PublishFailed(f"Kafka did not take the messages ({type(exc).__name__}); the import stopped: "
                         "what it took is stored once, import the files again once it takes them")


class LinesSink:
    """A dry run: each message as one JSON document a line."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    async def send(self, message: Message) -> None:
        try:
            self.out.write(message.value + b"\n")
        except OSError as exc:
            raise _output_failed(exc) from None

    async def flush(self) -> None:
        try:
            self.out.flush()
        except OSError as exc:
            raise _output_failed(exc) from None

    async def close(self) -> None:
        await self.flush()


def _output_failed(exc: OSError) -> ImportStopped:
    what = "the output closed before the import ended" if isinstance(exc, BrokenPipeError) \
        else "the output cannot be written"
    return ImportStopped(f"{what} ({type(exc).__name__}); the import stopped")


class ByteCounter:
    """Bytes read from the files on disk so far, for a progress bar of bytes of total."""

    def __init__(self, on_change: Callable[[int], None] | None = None) -> None:
        self.done, self.on_change = 0, on_change

    def opener(self, path: Path) -> BinaryIO:
        raw = _CountedFile(path, "r")
        raw.counter = self
        return io.BufferedReader(raw, 1 << 16)  # type: ignore[return-value]

    def add(self, n: int) -> None:
        self.done += n
        if self.on_change is not None and n:
            self.on_change(self.done)


class _CountedFile(io.FileIO):
    counter: ByteCounter

    def readinto(self, buffer: Any) -> int | None:  # type: ignore[override]
        n = super().readinto(buffer)
        self.counter.add(n or 0)
        return n


def total_bytes(paths: list[Path]) -> int:
    """The size on disk of everything under ``paths`` (the progress bar's total)."""
    total = 0
    for path in paths:
        if path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        elif path.is_file():
            total += path.stat().st_size
    return total


def archive_limits(settings: Settings) -> ArchiveLimits:
    return ArchiveLimits(settings.import_max_uncompressed_bytes, settings.import_max_compression_ratio,
                         settings.import_max_archive_entries)


async def import_paths(paths: list[Path], ctx: ImportContext, settings: Settings, sink: Sink, *,
                       fmt: str = "auto", counter: ByteCounter | None = None,
                       report: Callable[[FileSummary], None] = lambda s: None) -> list[FileSummary]:
    """Import every path; ``report`` gets each file's summary as soon as it is done."""
    counter = counter or ByteCounter()
    summaries: list[FileSummary] = []

    def done(summary: FileSummary) -> None:
        summaries.append(summary)
        report(summary)

    for path in paths:
        container = FileSummary(str(path), "archive" if path.is_dir() or _is_zip(path) else None)
        try:
            for entry in entries(path, archive_limits(settings), counter.opener):
                entry_fmt = detect(entry.name, entry.head)
                if fmt != "auto" and (container.format is None or entry_fmt == fmt):
                    entry_fmt = fmt
                elif fmt != "auto" or entry_fmt is None:
                    if container.format is None:
                        raise ImportFileError("format not recognised (give --format)")
                    container.skip("unrecognised_file", 1)
                    continue
                done(await _import_entry(entry, entry_fmt, ctx, settings, sink))
                await asyncio.sleep(0)
        except ImportFileError as exc:
            done(container.finish(str(exc)))
            continue
        except OSError as exc:
            done(container.finish(f"cannot read: {type(exc).__name__}"))
            continue
        if container.format is not None:
            done(container.finish())
    return summaries


async def _import_entry(entry: Entry, fmt: str, ctx: ImportContext, settings: Settings,
                        sink: Sink) -> FileSummary:
    summary = FileSummary(entry.name, fmt)
    reader = READERS[fmt]
    packer = Packer(settings.max_batch_readings, settings.max_message_bytes)
    held: list[Message] | None = [] if fmt in ATOMIC_FORMATS else None

    async def publish(message: Message | None) -> None:
        if message is None:
            return
        if held is not None:
            held.append(message)
            return
        await sink.send(message)
        summary.messages += 1
        summary.readings += message.readings

    error: str | None = None
    try:
        with entry.open() as stream:
            for n, item in enumerate(reader(stream, entry.name, ctx)):
                if isinstance(item, Skipped):
                    summary.skip(item.kind, item.count)
                else:
                    for reading in singles(item):
                        await publish(packer.add(reading))
                if n % 2048 == 0:
                    await asyncio.sleep(0)  # let the producer's background sends run
    except ImportFileError as exc:
        error = str(exc)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        error = f"cannot read: {type(exc).__name__}"
    except (zipfile.BadZipFile, zlib.error):
        error = "damaged archive entry (bad CRC or data)"
    if error is None or ctx.salvage:
        await publish(packer.flush())
        for message in held or ():
            await sink.send(message)
            summary.messages += 1
            summary.readings += message.readings
    await sink.flush()  # the summary says "published": only once Kafka has taken them
    return summary.finish(error)


def singles(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A reader's message as single readings: a batch envelope (the contract allows one) is
    opened, its members taking the envelope's user, device and source, so that it is packed
    again within the size bounds."""
    if "readings" not in message:
        return [message]
    shared = {k: message.get(k) for k in ("user_id", "device_id", "source")}
    return [{**member, **shared} for member in message["readings"]]


def _is_zip(path: Path) -> bool:
    if path.suffix.lower() == ".zip":
        return True
    try:
        with path.open("rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False
