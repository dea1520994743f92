"""The commands README.md and the docs site show, extracted in one place for
tests/integration/test_readme.py.

The documents are README.md, then every page of ``docs/`` in the order of the ``nav`` of
mkdocs.yml (a reader's order), then any page the nav leaves out (``mkdocs build --strict``
refuses those anyway). Every fenced ```bash block is a command block and is run, in that
order, in one shell session (so a variable set in one block is there in the next). A block
is left out only when the line right before its fence is
``<!-- readme-test: skip: <reason> -->``; the reason is required. New blocks are therefore
run without anyone editing a list. ```json blocks of the wire contract page are wire
examples, checked separately (elsewhere JSON blocks show answers).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SKIP = re.compile(r"^<!-- readme-test: skip: (?P<reason>\S.*?) -->$")
FENCE = re.compile(r"^```(?P<lang>[a-z]*)\s*$")
ROOT = Path(__file__).resolve().parents[1]
WIRE_CONTRACT = ROOT / "docs" / "reference" / "wire-contract.md"


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # 1-based line of the opening fence
    text: str
    skip_reason: str | None
    section: str  # the ``## `` heading the block is under
    where: str  # the document, relative to the repository root


def _nav_pages(nav: Any) -> Iterator[str]:
    """The Markdown files of an mkdocs ``nav``, in order (entries are str, or one-key dicts)."""
    if isinstance(nav, str):
        if nav.endswith(".md"):
            yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from _nav_pages(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from _nav_pages(value)


def documents(root: Path = ROOT) -> list[Path]:
    """README.md, the nav's pages that exist in docs/ (a generated page has no file), the rest."""
    docs = root / "docs"
    config = yaml.safe_load((root / "mkdocs.yml").read_text(encoding="utf-8"))
    in_nav = [docs / page for page in _nav_pages(config.get("nav", [])) if (docs / page).is_file()]
    rest = sorted(set(docs.rglob("*.md")) - set(in_nav))
    return [root / "README.md", *in_nav, *rest]


def blocks(path: Path) -> list[Block]:
    where = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    lines = path.read_text(encoding="utf-8").splitlines()
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
            raise ValueError(f"{where}:{i}: malformed marker {before!r}; use {SKIP.pattern}")
        found.append(Block(opening["lang"], i + 1, "\n".join(lines[i + 1:end]),
                           skip["reason"] if skip else None, section, where))
        i = end + 1
    return found


def all_blocks(root: Path = ROOT) -> list[Block]:
    return [block for path in documents(root) for block in blocks(path)]


def runnable(found: list[Block]) -> list[Block]:
    return [b for b in found if b.lang == "bash" and b.skip_reason is None]


def shell_script(found: list[Block]) -> str:
    """Every runnable bash block as one script that names each block on stderr as it starts."""
    parts = ["set -euo pipefail"]
    parts += [f"echo '### {b.where}:{b.line}' >&2\n{b.text}" for b in runnable(found)]
    return "\n".join(parts) + "\n"
