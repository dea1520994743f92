"""streams.progress off a terminal: counted lines at most every ``every_s``, notes as lines of their own."""

from __future__ import annotations

import io

from streams.progress import Progress


def test_notes_are_lines_beside_the_counted_ones() -> None:
    out = io.StringIO()
    bar = Progress("replay", total=100, unit="%", every_s=3600, stream=out)
    bar.update(10)  # the first line goes out at once
    bar.update(20)  # throttled
    bar.note("spark: 1 of 4 tasks done, 900 readings/s")
    bar.close()  # the final count
    assert out.getvalue().splitlines() == [
        "replay: 10/100%", "replay: spark: 1 of 4 tasks done, 900 readings/s", "replay: 20/100%"]
