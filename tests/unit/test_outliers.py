"""Outlier strategies: flag keeps, clip replaces by the bound, drop rejects."""

from __future__ import annotations

import pytest

from streams.domain import DEFAULT_CATALOGUE, OutlierStrategy, Rules, apply_outlier_policy, process_message
from streams.errors import ConfigurationError, Rejected, RejectReason

HEART = DEFAULT_CATALOGUE["heart_rate"]
STEPS = DEFAULT_CATALOGUE["steps"]


@pytest.mark.parametrize("strategy", list(OutlierStrategy))
@pytest.mark.parametrize("value", [30.0, 72.0, 220.0])
def test_values_within_bounds_are_untouched_by_every_strategy(strategy, value) -> None:
    assert apply_outlier_policy(HEART, value, strategy) == (value, ())


@pytest.mark.parametrize("value", [10.0, 250.0])
def test_flag_keeps_the_value(value) -> None:
    assert apply_outlier_policy(HEART, value, OutlierStrategy.FLAG) == (value, ("outlier",))


@pytest.mark.parametrize(("value", "bound"), [(10.0, 30.0), (250.0, 220.0), (29.5, 30.0)])
def test_clip_replaces_by_the_crossed_bound(value, bound) -> None:
    assert apply_outlier_policy(HEART, value, OutlierStrategy.CLIP) == (bound, ("outlier", "clipped"))


def test_clip_with_one_sided_bounds() -> None:
    assert apply_outlier_policy(STEPS, 0.0, OutlierStrategy.CLIP) == (0.0, ())
    assert apply_outlier_policy(STEPS, 60_000.0, OutlierStrategy.CLIP) == (50_000.0, ("outlier", "clipped"))


@pytest.mark.parametrize("value", [10.0, 250.0])
def test_drop_rejects(value) -> None:
    with pytest.raises(Rejected) as info:
        apply_outlier_policy(HEART, value, OutlierStrategy.DROP)
    assert info.value.code is RejectReason.OUTLIER_DROPPED
    assert str(value) not in info.value.message


def test_strategy_values_are_the_configuration_strings() -> None:
    assert [s.value for s in OutlierStrategy] == ["flag", "clip", "drop"]


def test_default_strategy_is_flag(reading, encode, ctx, rules) -> None:
    out = process_message(encode(reading(value=250)), ctx, rules)
    assert (out.readings[0].value, out.readings[0].quality_flags) == (250.0, ("outlier",))


def test_clip_strategy_through_the_pipeline_keeps_the_original(reading, encode, ctx, key) -> None:
    rules = Rules.default(key, outlier_strategies={"heart_rate": "clip"})
    stored = process_message(encode(reading(value=250, unit="bpm")), ctx, rules).readings[0]
    assert stored.value == 220.0
    assert stored.original_value == 250.0
    assert stored.quality_flags == ("outlier", "clipped")


def test_drop_strategy_through_the_pipeline_dead_letters(reading, encode, ctx, key) -> None:
    rules = Rules.default(key, outlier_strategies={" Heart_Rate": OutlierStrategy.DROP})
    payload = encode(reading(value=25))
    out = process_message(payload, ctx, rules)
    assert out.readings == []
    [dead] = out.dead_letters
    assert (dead.code, dead.metric, dead.source, dead.payload) == (
        RejectReason.OUTLIER_DROPPED,
        "heart_rate",
        "fitbit",
        payload,
    )


def test_strategy_applies_only_to_its_metric(reading, encode, ctx, key) -> None:
    rules = Rules.default(key, outlier_strategies={"heart_rate": "drop"})
    out = process_message(encode(reading(metric="steps", unit="steps", value=60_000)), ctx, rules)
    assert out.readings[0].quality_flags == ("outlier",)


@pytest.mark.parametrize("strategies", [{"heart_rate": "ignore"}, {"heart_rat": "clip"}])
def test_bad_strategy_configuration(strategies, key) -> None:
    with pytest.raises(ConfigurationError):
        Rules.default(key, outlier_strategies=strategies)
