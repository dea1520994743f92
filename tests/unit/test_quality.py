"""Quality dimensions on hand-built samples with known defects, checked against hand-computed scores."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from streams.domain.quality import (
    DIMENSIONS,
    DataValidator,
    DimensionCounts,
    QualityConfig,
    count_batch,
    meets_threshold,
    quality_level,
)
from streams.errors import ConfigurationError
from streams.records import NormalisedReading

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
USER_ID = "PHI-user-jane.doe-19750412@example.org"
DEVICE_ID = "PHI-device-serial-SN998877665544"


def row(i: int, **fields) -> dict:
    """A clean garmin heart_rate warehouse row, measured ``i`` minutes before NOW."""
    doc = {
        "event_id": f"evt-secret-{i}", "user_key": USER_ID, "device_id": DEVICE_ID, "source": "garmin",
        "metric": "heart_rate", "loinc_code": "8867-4", "value": 60.0 + i, "unit": "/min",
        "original_value": 60.0 + i, "original_unit": "bpm", "measured_at": NOW - timedelta(minutes=i),
        "ingested_at": NOW, "quality_flags": [], "kafka_topic": "raw", "kafka_partition": 0,
        "kafka_offset": i, "transformation_version": "1.0.0", "metadata": None,
    }
    doc.update(fields)
    return doc


def defective_sample() -> list[dict]:
    return [
        row(1), row(2), row(3, original_unit="beats_per_minute"), row(4, original_unit="beats_per_minute"),
        row(5, device_id=None),                                       # completeness
        row(6, value=250.0, quality_flags=["outlier"], original_unit="beats_per_minute"),  # accuracy
        row(7, measured_at=NOW - timedelta(hours=2)),                 # timeliness (threshold 1 h)
        row(8, event_id="evt-secret-dup", value=70.0, original_unit="beats_per_minute"),  # consistency: same
        row(9, event_id="evt-secret-dup", value=71.0),                           # event_id, other value
        row(10, value=350.0),                                         # validity: impossible
    ]


REJECTED = {("unknown_unit", "garmin"): 2, ("missing_field", "garmin"): 1, ("outlier_dropped", "garmin"): 1}


def test_every_dimension_matches_the_hand_computed_score():
    m = DataValidator().validate_data_quality(defective_sample(), "heart_rate", rejected=REJECTED)
    # completeness: 10 stored + 1 missing_field; r5 and the reject fail
    assert m.completeness == 9 / 11
    # validity: 10 stored + 2 unknown_unit; r10 and both rejects fail
    assert m.validity == 9 / 12
    # accuracy: 9 valid stored (r10 not judged) + 1 outlier_dropped; r6 and the reject fail
    assert m.accuracy == 8 / 10
    assert m.consistency == 8 / 10   # r8, r9
    assert m.timeliness == 9 / 10    # r7
    assert m.overall_score == pytest.approx((9 / 11 + 9 / 12 + 0.8 + 0.8 + 0.9) / 5)
    assert m.quality_level == "fair"
    assert (m.sample_size, m.rejected, m.data_type) == (10, 4, "heart_rate")
    assert m.counts == DimensionCounts((9, 9, 8, 8, 9), (11, 12, 10, 10, 10), 14)
    assert m.dimension_scores() == {d: getattr(m, d) for d in DIMENSIONS}


def test_weights_are_configurable_and_renormalised():
    config = QualityConfig(weights={"validity": 3, "timeliness": 1})
    m = DataValidator(config).validate_data_quality(defective_sample(), "heart_rate", rejected=REJECTED)
    assert m.overall_score == pytest.approx((3 * 9 / 12 + 1 * 0.9) / 4)


def test_normalised_readings_score_like_warehouse_rows():
    fields = set(NormalisedReading.__dataclass_fields__)
    readings = [NormalisedReading(**{k: v for k, v in r.items() if k in fields}) for r in defective_sample()]
    a = DataValidator().validate_data_quality(readings, "heart_rate", rejected=REJECTED)
    b = DataValidator().validate_data_quality(defective_sample(), "heart_rate", rejected=REJECTED)
    assert a == b


def test_timeliness_threshold_is_per_source():
    sample = [row(1, measured_at=NOW - timedelta(hours=3)),
              row(2, source="withings", measured_at=NOW - timedelta(hours=3, minutes=1))]
    config = QualityConfig(timeliness_by_source={"Withings": timedelta(hours=4)})
    m = DataValidator(config).validate_data_quality(sample, "heart_rate")
    assert m.timeliness == 0.5
    assert any("garmin" in i and "timeliness" in i for i in m.issues)
    assert not any("withings" in i for i in m.issues)


def test_systolic_not_above_diastolic_is_inconsistent():
    at = NOW - timedelta(minutes=1)
    pressure = dict(measured_at=at, unit="mm[Hg]", original_unit="mmHg")
    sample = [
        row(1, metric="blood_pressure_systolic", value=85.0, **pressure),
        row(2, metric="blood_pressure_diastolic", value=90.0, **pressure),
        row(3, metric="blood_pressure_systolic", value=120.0, **{**pressure, "measured_at": NOW}),
        row(4, metric="blood_pressure_diastolic", value=80.0, **{**pressure, "measured_at": NOW}),
        row(5, metric="blood_pressure_systolic", value=80.0, user_key="someone-else", **pressure),
    ]
    m = DataValidator().validate_data_quality(sample, "blood_pressure_systolic")
    assert (m.sample_size, m.consistency) == (3, 2 / 3)
    assert m.validity == 1.0 and m.accuracy == 1.0


def test_same_user_metric_and_instant_with_different_values_conflict():
    sample = [row(1), row(2, measured_at=NOW - timedelta(minutes=1), value=99.0), row(3), row(3)]
    m = DataValidator().validate_data_quality(sample, "heart_rate")
    assert m.consistency == 2 / 4  # r1 vs r2 conflict; the exact duplicate r3, r3 does not


@pytest.mark.parametrize(("score", "level"), [
    (1.0, "excellent"), (0.95, "excellent"), (0.9499999, "good"), (0.85, "good"), (0.8499999, "fair"),
    (0.70, "fair"), (0.6999999, "poor"), (0.50, "poor"), (0.4999999, "unusable"), (0.0, "unusable"),
])
def test_levels_at_each_boundary(score, level):
    assert quality_level(score) == level


@pytest.mark.parametrize(("late", "level"), [
    (5, "excellent"), (6, "good"), (15, "good"), (16, "fair"), (30, "fair"), (31, "poor"), (50, "poor"),
    (51, "unusable"),
])
def test_levels_from_a_sample_at_each_boundary(late, level):
    sample = [row(i, measured_at=NOW - timedelta(hours=2 if i < late else 0, seconds=i)) for i in range(100)]
    m = DataValidator(QualityConfig(weights={"timeliness": 1})).validate_data_quality(sample, "heart_rate")
    assert m.overall_score == (100 - late) / 100
    assert m.quality_level == level
    assert meets_threshold(m, 0.85) is (late <= 15)


def test_issues_and_recommendations_name_metric_and_source_and_hold_no_phi():
    m = DataValidator().validate_data_quality(defective_sample(), "heart_rate", rejected=REJECTED)
    texts = [*m.issues, *m.recommendations]
    assert len(m.issues) == 5 + 3 and texts  # five dimensions, three reject reasons
    for text in texts:
        assert "heart_rate" in text and "garmin" in text, text
        assert USER_ID not in text and DEVICE_ID not in text and "evt-secret" not in text
        assert "250" not in text and "350" not in text  # no reading values
    assert "completeness: 10% of garmin heart_rate readings lack device_id" in m.issues
    assert "40% of garmin heart_rate readings arrive as beats_per_minute: standardise on /min" \
        in m.recommendations
    assert "rejected: 2 garmin heart_rate records were dead-lettered as unknown_unit" in m.issues


def test_a_clean_sample_is_excellent_and_says_nothing():
    m = DataValidator().validate_data_quality([row(i, original_unit="/min") for i in range(5)], "heart_rate")
    assert (m.overall_score, m.quality_level, m.issues, m.recommendations) == (1.0, "excellent", (), ())


def test_an_empty_sample_is_unusable():
    m = DataValidator().validate_data_quality([], "heart_rate")
    assert (m.overall_score, m.quality_level, m.sample_size) == (0.0, "unusable", 0)
    assert not meets_threshold(m, 0.5)


def test_only_rejections_score_only_their_dimension():
    m = DataValidator().validate_data_quality([], "steps", rejected={"malformed_json": 3})
    assert (m.validity, m.overall_score, m.quality_level) == (0.0, 0.0, "unusable")
    assert m.issues == ("rejected: 3 unknown steps records were dead-lettered as malformed_json",)


def test_in_stream_counts_share_the_definitions():
    sample = defective_sample()
    rejections = [("unknown_unit", "heart_rate", "garmin"), ("unknown_unit", "heart_rate", "garmin"),
                  ("missing_field", "heart_rate", "Garmin"), ("outlier_dropped", "heart_rate", "garmin"),
                  ("malformed_json", None, None), ("unknown_metric", "mood", "garmin")]
    fitbit = row(0, source="fitbit", event_id="other", measured_at=NOW - timedelta(seconds=30))
    counts = count_batch([*sample, fitbit], rejections, QualityConfig())
    # Letters without a catalogue metric lower no metric's score: they are a DLQ-rate concern.
    assert set(counts) == {("heart_rate", "garmin"), ("heart_rate", "fitbit")}
    expected = DataValidator().validate_data_quality(sample, "heart_rate", rejected=REJECTED).counts
    assert counts[("heart_rate", "garmin")] == expected
    assert counts[("heart_rate", "fitbit")] == DimensionCounts((1,) * 5, (1,) * 5, 1)


def test_in_stream_sources_outside_the_known_list_count_as_other():
    readings = [row(i, source=f"vendor-{i}", event_id=f"e{i}") for i in range(50)]
    readings.append(row(99, source=" Garmin ", event_id="g"))
    rejections = [("unknown_unit", "heart_rate", f"app-{i}") for i in range(50)]
    counts = count_batch(readings, rejections, QualityConfig(known_sources=frozenset({"garmin"})))
    assert set(counts) == {("heart_rate", "garmin"), ("heart_rate", "other")}
    assert counts[("heart_rate", "other")].records == 100


def test_counts_add_and_round_trip():
    a = DimensionCounts((1, 2, 3, 4, 5), (5, 5, 5, 5, 5), 5)
    assert DimensionCounts.from_dict((a + a).to_dict()) == DimensionCounts((2, 4, 6, 8, 10), (10,) * 5, 10)


@pytest.mark.parametrize("bad", [
    dict(weights={"speed": 1}), dict(weights=dict.fromkeys(DIMENSIONS, 0)), dict(weights={"validity": -1}),
    dict(timeliness_default=timedelta(0)), dict(unit_share=0),
])
def test_bad_configuration_is_refused(bad):
    with pytest.raises(ConfigurationError):
        replace(QualityConfig(), **bad)


@pytest.mark.parametrize("bad", [
    {"HEALTHMATE_QUALITY_WEIGHTS": '{"speed": 1}'}, {"HEALTHMATE_QUALITY_WINDOWS_S": "[0]"},
    {"HEALTHMATE_QUALITY_TIMELINESS_BY_SOURCE_S": '{"withings": 0}'},
])
def test_settings_refuse_bad_quality_rules(bad, monkeypatch):
    from pydantic import ValidationError

    from streams.config import Settings

    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    with pytest.raises((ConfigurationError, ValidationError)):
        Settings(dev_mode=True)


def test_settings_build_the_quality_rules(monkeypatch):
    from streams.config import Settings

    monkeypatch.setenv("HEALTHMATE_QUALITY_WEIGHTS", '{"validity": 3}')
    monkeypatch.setenv("HEALTHMATE_QUALITY_TIMELINESS_BY_SOURCE_S", '{"Withings": 86400}')
    config = Settings(dev_mode=True).quality_rules
    assert dict(config.weights) == {**dict.fromkeys(DIMENSIONS, 1.0), "validity": 3.0}
    assert config.threshold_for("withings") == timedelta(days=1)
    assert config.threshold_for("garmin") == timedelta(hours=1)
