"""The commands README.md shows, extracted in one place for tests/integration/test_readme.py.

Every fenced ```bash block is a command block and is run, in document order, in one shell
session (so a variable set in one block is there in the next). A block is left out only
when the line right before its fence is ``<!-- readme-test: skip: <reason> -->``; the reason
is required. New blocks are therefore run without anyone editing a list. ```json blocks
of the "Wire contract" section are wire examples, checked separately (elsewhere JSON
blocks show answers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SKIP = re.compile(r"^<!-- readme-test: skip: (?P<reason>\S.*?) -->$")
FENCE = re.compile(r"^```(?P<lang>[a-z]*)\s*$")


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # 1-based line of the opening fence
    text: str
    skip_reason: str | None
    section: str  # the ``## `` heading the block is under


def blocks(readme: Path) -> list[Block]:
    lines = readme.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    section = ""
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            if lines[i].startswith("## "):
                section = lines[i][3:].strip()
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = lines[i - 1].strip() if i else ""
        skip = SKIP.match(before)
        if before.startswith("<!-- readme-test") and skip is None:
            raise ValueError(f"README.md:{i}: malformed marker {before!r}; use {SKIP.pattern}")
        found.append(Block(opening["lang"], i + 1, "\n".join(lines[i + 1:end]),
                           skip["reason"] if skip else None, section))
        i = end + 1
    return found


def shell_script(readme: Path) -> str:
    """Every runnable bash block as one script that names each block on stderr as it starts."""
    parts = ["set -euo pipefail"]
    for block in blocks(readme):
        if block.lang == "bash" and block.skip_reason is None:
            parts.append(f"echo '### README.md:{block.line}' >&2\n{block.text}")
    return "\n".join(parts) + "\n"
