"""A streaming pre-filter that makes real Apple Health exports parseable, and safe to parse.

:class:`CleanXml` wraps a byte stream and yields the same document with

- the ``<!DOCTYPE …>`` of the prolog removed (replaced by as many newlines as it spanned, so
  parse errors still name the right line). iOS 16 and later write an internal DTD that
  expat refuses ("syntax error: line 156"); nothing in it is needed to read the records.
  Without a DTD no entity can be declared, so none can be expanded (billion laughs) or
  fetched (XXE). A DOCTYPE that declares an entity is refused outright (an ``xml_bomb``
  :class:`~streams.errors.ImportRefused`): a real export never does;
- the bytes XML 1.0 forbids (C0 controls other than tab, newline and carriage return;
  exports carry stray ``\\x0b`` in attribute values) dropped. In UTF-8 these bytes never
  occur inside a multi-byte character, so dropping them byte-wise is exact.

Memory: one read-size chunk plus at most :data:`MAX_PROLOG_BYTES` of prolog.
"""

from __future__ import annotations

import io
import re
from typing import BinaryIO

from streams.errors import ImportFileError, ImportRefused

#: The prolog (XML declaration, comments, DOCTYPE) must end within this many bytes.
MAX_PROLOG_BYTES = 4 * 1024 * 1024
_ILLEGAL = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ROOT_START = re.compile(rb"<[A-Za-z_]")
_SUBSET_END = re.compile(rb"\]\s*>")
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)


def xml_bomb(message: str) -> ImportRefused:
    """The document declares entities or a DTD: refused, never expanded."""
    return ImportRefused("xml_bomb", message)


def check_prolog(head: bytes) -> None:
    """Raise an ``xml_bomb`` refusal when the DOCTYPE in ``head`` declares an entity (pure; the
    upload checks the head of an XML file with it before accepting the file)."""
    cleaned = head.translate(None, _ILLEGAL)
    match = _DOCTYPE.search(cleaned)
    root = _ROOT_START.search(cleaned)
    if match is None or (root is not None and root.start() < match.start()):
        return
    if _ENTITY.search(cleaned, match.end()):
        raise xml_bomb("the XML declares entities (refused: entity expansion is never performed)")


class CleanXml(io.RawIOBase):
    """``raw`` with the prolog's DOCTYPE and the XML-illegal bytes removed (read-only)."""

    def __init__(self, raw: BinaryIO, chunk: int = 1 << 20) -> None:
        super().__init__()
        self._raw, self._chunk = raw, chunk
        self._pending = b""
        self._prolog_done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            data = self._raw.read(self._chunk)
            if not data:
                return 0
            data = data.translate(None, _ILLEGAL)
            if not self._prolog_done:
                data = self._prolog(data)
            self._pending = data
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _prolog(self, data: bytes) -> bytes:
        """Accumulate the prolog until the root element starts, then strip its DOCTYPE."""
        while True:
            doctype = _DOCTYPE.search(data)
            root = _ROOT_START.search(data)
            if root is not None and (doctype is None or root.start() < doctype.start()):
                self._prolog_done = True
                return data
            if doctype is not None:
                end = self._doctype_end(data, doctype.end())
                if end is not None:
                    check_prolog(data[: end])
                    removed = data[doctype.start(): end]
                    self._prolog_done = True
                    return data[: doctype.start()] + b"\n" * removed.count(b"\n") + data[end:]
            if len(data) > MAX_PROLOG_BYTES:
                raise ImportFileError(f"the XML prolog (DOCTYPE) is over {MAX_PROLOG_BYTES} bytes")
            more = self._raw.read(self._chunk)
            if not more:
                self._prolog_done = True
                return data
            data += more.translate(None, _ILLEGAL)

    @staticmethod
    def _doctype_end(data: bytes, start: int) -> int | None:
        bracket, close = data.find(b"[", start), data.find(b">", start)
        if close == -1:
            return None
        if bracket == -1 or close < bracket:
            return close + 1
        end = _SUBSET_END.search(data, bracket)
        return None if end is None else end.end()
