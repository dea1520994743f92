"""The shortened fault suite of ``make test`` (``make chaos`` runs all of it): the poison
corpus while valid traffic flows, and 3 kill/rejoin loops of two workers in one group.
On the shared stack: nothing here kills the broker or PostgreSQL."""

from __future__ import annotations

import pytest
from chaos.pipeline import Pipeline
from chaos.scenarios import poison as poison_scenario
from chaos.scenarios import rebalance

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def report(row) -> str:  # type: ignore[no-untyped-def]
    return "\n".join([row.notes, *row.problems, *row.verdict.problems, *row.deaths])


async def test_poison_corpus_never_wedges_the_worker(pipeline_env, pipeline_settings, tmp_path):
    row = await poison_scenario(Pipeline(pipeline_env, tmp_path), full=False)
    assert row.ok, report(row)
    assert row.verdict.dlq >= 80  # the corpus itself, each poison message dead-lettered


async def test_three_rebalance_loops_never_hang(pipeline_env, pipeline_settings, tmp_path):
    row = await rebalance(Pipeline(pipeline_env, tmp_path), loops=3)
    assert row.ok, report(row)
    assert row.verdict.stored > 0
