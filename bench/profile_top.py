"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) by own and total time.

    python bench/profile_top.py bench/profiles/single.txt [--grep streams/] [-n 30]

``make bench`` writes such profiles with ``BENCH_PROFILE=1``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile", type=Path)
    parser.add_argument("-n", type=int, default=30, help="rows per table")
    parser.add_argument("--grep", default="", help="only frames whose text contains this")
    parser.add_argument("--with-idle", action="store_true",
                        help="keep samples of threads waiting in select() (dropped by default)")
    opts = parser.parse_args()
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in opts.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if not opts.with_idle and "Selector.select (selectors.py" in frames[-1]:
            continue
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    print(f"{samples} samples" + ("" if opts.with_idle else " (idle select() samples dropped)"))
    for title, counter in (("own", own), ("total", total)):
        print(f"\n-- by {title} time")
        rows = [(f, n) for f, n in counter.most_common() if opts.grep in f][: opts.n]
        for frame, n in rows:
            print(f"{100 * n / samples:6.1f}%  {frame}")


if __name__ == "__main__":
    main()
