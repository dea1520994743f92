"""MkDocs hooks (``hooks:`` in mkdocs.yml): the pages generated from the code at build time.

- ``<!-- generated: settings -->`` in a page becomes the table of every ``HEALTHMATE_*``
  setting, read from the ``Settings`` model (its fields are declared in
  streams/config_sections.py): the variable, its default, what it accepts (type, choices,
  bounds) and its ``Field(description=…)``. A page may add a note to a variable in its front
  matter (``notes: {HEALTHMATE_X: "…"}``), for a link the description cannot carry; a note
  naming no setting, or a setting with neither a description nor a note, stops the build.
- ``<!-- generated: secret-settings -->`` becomes the list of the secret settings (those that
  may come from a ``HEALTHMATE_<NAME>_FILE``).
- ``contributing/benchmark.md`` is bench/README.md, which stays next to the code it describes.

The Settings model is imported from this checkout (not from whatever ``streams`` the
environment has installed), so the docs always describe the code beside them.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_MARKER = "<!-- generated: settings -->"
SECRETS_MARKER = "<!-- generated: secret-settings -->"
BENCH_PAGE = "contributing/benchmark.md"


@dataclass(frozen=True)
class SettingDoc:
    section: str
    variable: str
    default: str
    accepts: str
    meaning: str
    secret: bool


def _settings_model() -> type[BaseModel]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    for name in [m for m in sys.modules if m == "streams" or m.startswith("streams.")]:
        module_file = getattr(sys.modules[name], "__file__", None) or ""
        if not module_file.startswith(str(ROOT)):
            del sys.modules[name]  # another checkout's streams: read this one's
    from streams.config import Settings

    return Settings


def _sections(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the title of the settings section (``streams/config_sections.py``) that
    declares it; a field declared on the model itself is "General"."""
    found: dict[str, str] = {}
    for base in model.__mro__:
        title = getattr(base, "TITLE", "")
        if title and issubclass(base, BaseModel):
            found.update(dict.fromkeys(base.model_fields, title))
    return found


def _code(value: str) -> str:
    return f"`{value}`"


def _default(field: Any) -> str:
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is None:
        return "—"
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return _code(str(value).lower())
    if isinstance(value, float):
        return _code(format(value, "g"))
    if isinstance(value, (list, dict)):
        return _code(json.dumps(value))
    if value == "":
        return "— (empty)"
    return _code(str(value))


def _kind(annotation: Any) -> tuple[str, bool]:
    """What a type accepts, in words, and whether ``None`` (unset) is allowed."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        text, _ = _kind(inner[0]) if len(inner) == 1 else (" or ".join(_kind(a)[0] for a in inner), False)
        return text, type(None) in args
    if origin is typing.Literal:
        return "one of " + ", ".join(_code(str(a)) for a in args), False
    if origin is list:
        return "JSON list", False
    if origin is dict:
        return "JSON object", False
    names = {bool: "`true` or `false`", int: "integer", float: "number", str: "text"}
    if annotation in names:
        return names[annotation], False
    if getattr(annotation, "__name__", "") == "SecretStr":
        return "secret text", False
    return getattr(annotation, "__name__", str(annotation)), False


def _bounds(field: Any) -> list[str]:
    words = {"ge": "≥ {}", "gt": "> {}", "le": "≤ {}", "lt": "< {}",
             "min_length": "at least {} long", "pattern": "matching `{}`"}
    plain = {("min_length", 1): "not empty"}
    found = []
    for item in field.metadata:
        for attr, template in words.items():
            value = getattr(item, attr, None)
            if value is None:
                continue
            text = template.format(format(value, "g") if isinstance(value, float) else value)
            found.append(plain.get((attr, value), text))
    return found


def _accepts(field: Any) -> tuple[str, bool]:
    kind, optional = _kind(field.annotation)
    secret = "secret" in kind
    text = ", ".join([kind, *_bounds(field)])
    if optional:
        text += "; may be unset"
    return text, secret


def setting_docs(model: type[BaseModel], notes: dict[str, str] | None = None) -> list[SettingDoc]:
    """One entry per field of ``model``, in declaration order. Raises ValueError for a note
    that names no setting, and for a setting that has neither a description nor a note."""
    notes = dict(notes or {})
    prefix = model.model_config.get("env_prefix", "")
    sections = _sections(model)
    docs = []
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        variable = alias if isinstance(alias, str) else f"{prefix}{name.upper()}"
        meaning = " ".join(part for part in (field.description, notes.pop(variable, None)) if part)
        if not meaning:
            raise ValueError(f"{variable} has no Field(description=…) in streams/config_sections.py "
                             f"and no note in docs/reference/settings.md: describe it")
        accepts, secret = _accepts(field)
        docs.append(SettingDoc(sections.get(name, "General"), variable, _default(field), accepts,
                               meaning.replace("|", "\\|").replace("\n", " "), secret))
    if notes:
        raise ValueError(f"docs/reference/settings.md notes name no setting: {', '.join(sorted(notes))}")
    return docs


def settings_table(docs: list[SettingDoc]) -> str:
    out: list[str] = []
    for section in dict.fromkeys(d.section for d in docs):
        out += [f"## {section}", "", '<div class="settings-table" markdown>', "",
                "| variable | default | accepts | meaning |", "|---|---|---|---|"]
        out += [f"| `{d.variable}` | {d.default} | {d.accepts} | {d.meaning} |" for d in docs
                if d.section == section]
        out += ["", "</div>", ""]
    return "\n".join(out)


def secret_list(docs: list[SettingDoc]) -> str:
    return "\n".join(f"- `{d.variable}` (or `{d.variable}_FILE`)" for d in docs if d.secret) + "\n"


# --- MkDocs hook events ------------------------------------------------------------------

def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    text = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
    files.append(File.generated(config, BENCH_PAGE, content=text))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if SETTINGS_MARKER not in markdown and SECRETS_MARKER not in markdown:
        return markdown
    from mkdocs.exceptions import PluginError

    try:
        docs = setting_docs(_settings_model(), page.meta.get("notes"))
    except ValueError as exc:
        raise PluginError(str(exc)) from None
    return markdown.replace(SETTINGS_MARKER, settings_table(docs)).replace(SECRETS_MARKER, secret_list(docs))
