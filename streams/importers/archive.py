"""What a folder or ``.zip`` of exports may hold, and the entries it is read as. Streaming.

A zip is checked from its central directory before anything is decompressed
(:func:`check_zip`), and refused whole (:class:`~streams.errors.ImportRefused`, ``kind`` says why) when:

- ``zip_bomb``: the entries' declared sizes add up to more than ``max_total_bytes``, or one
  entry's size is over ``max_ratio`` times its compressed size, or it has more than
  ``max_entries`` entries. Decompression never produces more than the declared size
  (Python's ``zipfile`` stops there and checks the CRC), so the declared sizes bound the work;
- ``nested_archive``: an entry is itself an archive (by name or by its first bytes);
- ``path_escape``: an entry's name is absolute, has a drive, a ``..`` segment, a backslash or a
  NUL: it would leave any folder it were extracted to. Entries are never extracted (they
  are read as streams), but such a name marks a hostile file.

A folder is walked in name order (symbolic links are not followed); a zip inside a folder is
read as above.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from streams.errors import ImportFileError, ImportRefused

ZIP_MAGIC = b"PK\x03\x04"
_ARCHIVE_MAGICS = (ZIP_MAGIC, b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"Rar!")
_ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar", ".jar")


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int
    max_ratio: float
    max_entries: int


@dataclass(frozen=True)
class Entry:
    """One file to read: ``name`` is shown in summaries (``archive.zip:inner/path``)."""

    name: str
    open: Callable[[], BinaryIO]
    head: bytes


def is_archive(name: str, head: bytes) -> bool:
    return name.lower().endswith(_ARCHIVE_SUFFIXES) or head.startswith(_ARCHIVE_MAGICS)


def escapes(name: str) -> bool:
    """True when an entry name could leave the folder it is extracted to."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return True
    if len(name) > 1 and name[1] == ":":  # a drive: C:evil
        return True
    return ".." in PurePosixPath(name).parts


def check_zip(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    """Refuse a zip by its central directory (see the module docstring). Pure."""
    if len(infos) > limits.max_entries:
        raise ImportRefused("zip_bomb", f"the archive has more than {limits.max_entries} entries")
    total = 0
    for info in infos:
        if escapes(info.filename):
            raise ImportRefused("path_escape", "an archive entry's path leaves the archive's folder")
        if info.is_dir():
            continue
        if is_archive(info.filename, b""):
            raise ImportRefused("nested_archive", "the archive holds another archive (refused)")
        total += info.file_size
        if info.file_size > limits.max_ratio * max(info.compress_size, 1) and info.file_size > 1 << 20:
            raise ImportRefused("zip_bomb", f"an entry expands more than {limits.max_ratio:g} times")
    if total > limits.max_total_bytes:
        raise ImportRefused("zip_bomb", f"the archive expands to more than {limits.max_total_bytes} bytes")


def entries(path: Path, limits: ArchiveLimits, opener: Callable[[Path], BinaryIO] | None = None
            ) -> Iterator[Entry]:
    """The files of ``path`` (a file, a folder or a zip) as entries, lazily.

    ``opener`` opens a file on disk (the importer passes one that counts bytes for progress).
    Raises :class:`~streams.errors.ImportRefused` for a refused zip and :class:`ImportFileError` for a zip
    whose directory cannot be read."""
    opener = opener or (lambda p: p.open("rb"))
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
            yield from entries(child, limits, opener)
        return
    with opener(path) as raw:
        head = raw.read(4096)
    if head.startswith(ZIP_MAGIC) or path.suffix.lower() == ".zip":
        yield from _zip_entries(path, limits, opener)
        return
    yield Entry(str(path), lambda: opener(path), head)


def _zip_entries(path: Path, limits: ArchiveLimits, opener: Callable[[Path], BinaryIO]) -> Iterator[Entry]:
    with opener(path) as raw:
        try:
            archive = zipfile.ZipFile(raw)
        except (zipfile.BadZipFile, OSError, EOFError):
            raise ImportFileError("not a readable zip archive") from None
        with archive:
            infos = archive.infolist()
            check_zip(infos, limits)
            for info in infos:
                if info.is_dir():
                    continue
                try:
                    with archive.open(info) as member:
                        head = member.read(4096)
                except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OSError):
                    raise ImportFileError("a zip entry cannot be read (damaged or encrypted)") from None
                if is_archive(info.filename, head):
                    raise ImportRefused("nested_archive", "the archive holds another archive (refused)")
                yield Entry(f"{path}:{info.filename}", _member(archive, info), head)


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], BinaryIO]:
    return lambda: archive.open(info)  # type: ignore[return-value]
