"""The ``cgm`` job target as configuration and lineage see it (no database)."""

from __future__ import annotations

import pydantic
import pytest

from batch import cgm
from batch.config import ETLJobConfig
from batch.lineage import datasets
from streams.config import Settings
from streams.domain.catalogue import DEFAULT_CATALOGUE
from streams.sink.migrations import ALL_VERSIONS, MIGRATIONS


def test_glucose_is_stored_in_the_unit_the_bands_are_written_in() -> None:
    rule = DEFAULT_CATALOGUE[cgm.GLUCOSE]
    assert rule.canonical_unit == cgm.UNIT == "mg/dL"
    assert "mmol/L" in rule.conversions, "mmol/L readings are converted at ingest, so the target sees mg/dL"


def test_the_target_reads_profiles_so_its_days_are_local() -> None:
    job = ETLJobConfig(job_name="cgm", target_tables=["cgm"])
    assert job.source_tables == ["health_readings", "user_profiles"] and job.local_days
    with pytest.raises(pydantic.ValidationError, match="user_profiles"):
        ETLJobConfig(job_name="cgm", source_tables=["health_metrics"], target_tables=["cgm"])


def test_lineage_names_both_tables_with_every_column() -> None:
    settings = Settings(pseudonym_key="k" * 32)  # type: ignore[call-arg]
    _, outputs = datasets(ETLJobConfig(job_name="cgm", target_tables=["cgm"]), settings)
    assert [o.name.rsplit(".", 1)[1] for o in outputs] == ["cgm_daily", "cgm_14d"]
    for o in outputs:
        columns = {f.name for f in o.facets["schema"].fields}
        assert {"user_key", "local_day", "active_pct", "in_range_pct", "gmi_pct", "sufficient"} <= columns
        assert set(o.facets["columnLineage"].fields) == columns


def test_the_tables_come_with_migration_12() -> None:
    assert 12 in ALL_VERSIONS
    ddl = dict((v, sql) for v, _, sql in MIGRATIONS)[12]
    assert "CREATE TABLE {s}.cgm_daily" in ddl and "CREATE TABLE {s}.cgm_14d" in ddl
