"""The docs site's generated pages and the README's promises, without building the site
(``make test`` runs ``mkdocs build --strict`` itself, before pytest)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import pytest
import yaml
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from readme_commands import blocks, documents

from streams.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "scripts" / "docs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_hooks"] = module
    spec.loader.exec_module(module)
    return module


hooks = _hooks()


def _notes() -> dict[str, str]:
    text = (ROOT / "docs" / "reference" / "settings.md").read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---\n")[1])["notes"]


def _rows(table: str) -> dict[str, list[str]]:
    """Variable -> the cells of its row, read back from the generated Markdown."""
    rows = {}
    for line in table.splitlines():
        if line.startswith("| `HEALTHMATE_"):
            cells = [c.strip() for c in re.findall(r"\|((?:`[^`]*`|\\\||[^|`])*)(?=\|)", line)]
            rows[cells[0].strip("`")] = cells
    return rows


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("HEALTHMATE_")]:
        monkeypatch.delenv(name)


def test_every_setting_has_one_row_with_its_default_and_meaning(clean_env: None) -> None:
    rows = _rows(hooks.settings_table(hooks.setting_docs(Settings, _notes())))
    assert len(rows) == len(Settings.model_fields)
    live = Settings(dev_mode=False, pseudonym_key=SecretStr("k"))  # type: ignore[call-arg]
    for name, field in Settings.model_fields.items():
        variable, default, _accepts, meaning = rows[f"HEALTHMATE_{name.upper()}"]
        if field.description:
            assert field.description.replace("|", "\\|") in meaning, name
        value = getattr(live, name)
        if name not in ("dev_mode", "pseudonym_key") and type(value) in (int, str) and value != "":
            assert default == f"`{value}`", name  # what a process really gets with no environment


def test_the_secret_list_is_what_the_file_variables_really_fill(
        clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    listed = re.findall(r"^- `(HEALTHMATE_\w+)` \(or `\1_FILE`\)$",
                        hooks.secret_list(hooks.setting_docs(Settings, _notes())), re.M)
    assert "HEALTHMATE_PSEUDONYM_KEY" in listed and "HEALTHMATE_APP_ID" not in listed
    for variable in listed:
        secret = tmp_path / variable
        secret.write_text("postgresql://u:from-a-file-0123456789abcdef0123456789@h/db\n")
        monkeypatch.setenv(f"{variable}_FILE", str(secret))
    monkeypatch.setenv("HEALTHMATE_APP_ID_FILE", str(secret))  # not a secret: ignored
    settings = Settings(dev_mode=True)  # type: ignore[call-arg]
    for variable in listed:
        value = getattr(settings, variable.removeprefix("HEALTHMATE_").lower())
        assert value.get_secret_value() == secret.read_text()[:-1], variable
    assert settings.app_id == "healthmate-pipeline"


class _First(BaseModel):
    TITLE: ClassVar[str] = "First"
    described: int = Field(3, ge=1, description="A | described setting.")
    bare: SecretStr | None = None


class _Tiny(BaseSettings, _First):
    model_config = SettingsConfigDict(env_prefix="TINY_")


def test_a_setting_without_description_or_note_stops_the_build() -> None:
    with pytest.raises(ValueError, match="TINY_BARE has no Field"):
        hooks.setting_docs(_Tiny)
    docs = hooks.setting_docs(_Tiny, {"TINY_BARE": "Noted."})
    assert [(d.section, d.variable, d.default, d.meaning, d.secret) for d in docs] == [
        ("First", "TINY_DESCRIBED", "`3`", "A \\| described setting.", False),
        ("First", "TINY_BARE", "—", "Noted.", True)]
    assert docs[0].accepts == "integer, ≥ 1" and docs[1].accepts == "secret text; may be unset"


def test_a_note_naming_no_setting_stops_the_build() -> None:
    with pytest.raises(ValueError, match="TINY_GONE"):
        hooks.setting_docs(_Tiny, {"TINY_BARE": "Noted.", "TINY_GONE": "Stale."})


def test_the_warehouse_page_names_every_table_the_migrations_create() -> None:
    # migrations.py and the modules holding a migration's DDL (cgm_tables.py), where the
    # schema is ``{s}``, or ``{{s}}`` inside an f-string.
    migrations = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "streams" / "sink").glob("*.py"))
    created = set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?\{\{?s\}\}?\.(\w+)", migrations))
    assert {"health_readings", "cgm_daily", "cgm_14d"} <= created and len(created) >= 17
    page = (ROOT / "docs" / "reference" / "warehouse.md").read_text(encoding="utf-8")
    tables = page[page.index("## Tables"):]
    assert {t for t in created if f"`{t}`" not in tables} == set()


def test_the_readme_is_short_and_its_links_resolve() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 250
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert len(links) > 20
    assert [link for link in links if not (ROOT / link).is_file()] == []


def test_the_quick_start_is_the_two_commands() -> None:
    first = blocks(ROOT / "README.md")[0]
    assert first.section == "Quick start" and first.skip_reason
    assert [line.split()[:2] for line in first.text.splitlines()] == [["make", "run"], ["make", "test"]]


def test_documents_follow_the_nav_then_the_pages_it_leaves_out(tmp_path: Path) -> None:
    (tmp_path / "docs" / "b").mkdir(parents=True)
    for page in ("index.md", "b/two.md", "b/one.md", "left-out.md"):
        (tmp_path / "docs" / page).write_text(f"# {page}\n")
    (tmp_path / "README.md").write_text("# r\n")
    (tmp_path / "mkdocs.yml").write_text(
        "nav:\n  - Home: index.md\n  - B:\n      - b/two.md\n      - One: b/one.md\n      - generated.md\n")
    found = [str(p.relative_to(tmp_path)) for p in documents(tmp_path)]
    assert found == ["README.md", "docs/index.md", "docs/b/two.md", "docs/b/one.md", "docs/left-out.md"]


def _bounds(cell: str) -> dict[str, float]:
    """``<0 or >300`` -> {"<": 0, ">": 300}; ``≤0`` is an exclusive lower bound."""
    return {op: float(num) for op, num in re.findall(r"([<>≤])\s*(-?\d+(?:\.\d+)?)", cell)}


def test_the_metric_catalogue_page_agrees_with_the_catalogue() -> None:
    from streams.domain.catalogue import DEFAULT_CATALOGUE

    page = (ROOT / "docs" / "reference" / "metric-catalogue.md").read_text(encoding="utf-8")
    rows = {cells[0]: cells for line in page.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip("|").split("|")]] if cells[0] != "metric"}
    assert set(rows) == set(DEFAULT_CATALOGUE)
    for name, rule in DEFAULT_CATALOGUE.items():
        _, canonical, accepted, loinc, rejected, outlier = rows[name]
        assert (canonical, loinc) == (f"`{rule.canonical_unit}`", rule.loinc_code), name
        spellings = set(re.split(r"[,;]\s*|\s+[×÷−(].*?(?=[,;]|$)", accepted)) - {""}
        assert set(rule.conversions) <= spellings, (name, set(rule.conversions) - spellings)
        low = "≤" if rule.min_exclusive else "<"
        assert _bounds(rejected) == {low: rule.min_value, ">": rule.max_value}, name
        expected = {op: v for op, v in (("<", rule.outlier_low), (">", rule.outlier_high)) if v is not None}
        assert _bounds(outlier) == expected, name


def test_the_reason_codes_page_names_every_reason_code() -> None:
    from streams.errors import RejectReason

    page = (ROOT / "docs" / "reference" / "reason-codes.md").read_text(encoding="utf-8")
    assert [r.value for r in RejectReason if f"`{r.value}`" not in page] == []


def test_the_api_page_lists_every_route_with_its_least_role() -> None:
    from web.auth import ROLE_PERMISSIONS
    from web.views import api_routes

    page = (ROOT / "docs" / "reference" / "api.md").read_text(encoding="utf-8")
    table = page[page.index("## Routes and roles"):page.index("## Jobs from the command line")]
    for route in api_routes():
        least = next(role for role, granted in ROLE_PERMISSIONS.items() if route.permission in granted)
        if route.path == "/openapi.json":  # described above the table: any role
            assert "/data-pipeline/openapi.json" in page and least == "viewer"
            continue
        named = re.compile(rf"`{route.method} {re.escape(route.path)}[`?]")
        rows = [line for line in table.splitlines() if named.search(line)]
        assert len(rows) == 1, f"{route.method} {route.path}: one row of the table names it"
        assert rows[0].split("|")[2].strip() == least, f"{route.method} {route.path}: least role {least}"
