"""Progress of a long command on stderr (produce, replay, setup, run-job).

On a terminal it is a tqdm bar (tqdm: small, pure Python, well kept; it handles redraw
throttling and terminal width). Elsewhere (logs, CI, pipes) it is one plain line at most
every ``every_s`` seconds and one at the end, so a redirected run still shows it is alive.
"""

from __future__ import annotations

import sys
import time
from typing import IO

from tqdm import tqdm


class Progress:
    """``update(done)`` with an absolute count (of ``total``, when known); ``close()`` once."""

    def __init__(self, label: str, *, total: int | None = None, unit: str = "", every_s: float = 2.0,
                 stream: IO[str] | None = None) -> None:
        self.label, self.total, self.unit, self.every_s = label, total, unit, every_s
        self.stream = stream or sys.stderr
        self.done, self._last_line = 0, float("-inf")
        self._bar = (tqdm(total=total, desc=label, unit=unit or "it", file=self.stream, leave=True)
                     if self.stream.isatty() else None)

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self.done)
            self.done = done
            return
        self.done = done
        now = time.monotonic()
        if now - self._last_line >= self.every_s:
            self._last_line = now
            self._line()

    def note(self, text: str) -> None:
        """News beside the count (a Spark replay's tasks done and rate): the bar's postfix on a
        terminal, else a line of its own. The caller throttles (it is not counted as a line)."""
        if self._bar is not None:
            self._bar.set_postfix_str(text)
            return
        self.stream.write(f"{self.label}: {text}\n")
        self.stream.flush()

    def step(self, what: str) -> None:
        """A named stage of a command with stages instead of a count (setup)."""
        self.stream.write(f"{self.label}: {what}\n")
        self.stream.flush()

    def close(self, *, finished: bool = True) -> None:
        """End the bar; a log line with the final count only when the work ``finished`` (after
        a failure, the one-line error is the last word)."""
        if self._bar is not None:
            self._bar.close()
        elif finished and (self.total is not None or self.done):
            self._line()

    def _line(self) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        unit = f" {self.unit}" if self.unit and self.unit != "%" else self.unit
        self.stream.write(f"{self.label}: {self.done}{of}{unit}\n")
        self.stream.flush()
