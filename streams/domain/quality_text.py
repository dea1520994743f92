"""Issues and recommendations for a judged sample. Pure: no I/O.

Every sentence names the metric and the source it concerns and is built only from labels,
counts, shares, units, catalogue bounds and thresholds: never a user id, user key,
device id, event id, timestamp or reading value.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from streams.domain.quality_rules import REQUIRED_FIELDS, field_of, label

if TYPE_CHECKING:
    from streams.domain.quality import QualityConfig, Verdict

_REJECT_ADVICE = {
    "missing_field": "make the {source} {metric} producer send every required field",
    "invalid_type": "make the {source} {metric} producer send finite JSON numbers and valid timestamps",
    "unknown_unit": "make the {source} {metric} producer send an accepted unit ({units})",
    "out_of_range": "check the {source} {metric} devices: values outside {lo}..{hi} {unit} are impossible",
    "naive_timestamp": "make the {source} {metric} producer send timestamps with a UTC offset",
    "future_timestamp": "check the clocks of {source} {metric} devices: readings arrive from the future",
    "outlier_dropped": "check the {source} {metric} sensors: outliers are being dropped",
}


def pct(share: float) -> str:
    """A share as a short percentage: 0.38 -> '38%', 1/3 -> '33.3%'."""
    text = f"{share * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def describe(metric: str, judged: Sequence[tuple[Any, Verdict]], rejections: Mapping[tuple[str, str], int],
             config: QualityConfig) -> tuple[list[str], list[str]]:
    """Issues and recommendations for ``metric``; sources in alphabetical order.

    ``judged``: (reading, verdict) pairs of stored readings of ``metric``; ``rejections``:
    rejected-record counts keyed by (reason, source label).
    """
    rule = config.catalogue.get(metric)
    by_source: dict[str, list[tuple[Any, Verdict]]] = defaultdict(list)
    for row, verdict in judged:
        by_source[label(field_of(row, "source"))].append((row, verdict))
    issues: list[str] = []
    advice: list[str] = []
    for source in sorted(by_source):
        rows = by_source[source]
        n = len(rows)
        subject = f"{source} {metric} readings"

        def share(i: int, rows: list = rows) -> float:
            return sum(1 for _, v in rows if v[i] is False) / len(rows)

        missing = Counter(f for r, v in rows if v[0] is False for f in _missing(r, config))
        if missing:
            fields = ", ".join(sorted(missing))
            issues.append(f"completeness: {pct(share(0))} of {subject} lack {fields}")
            advice.append(f"send {fields} with every {source} {metric} reading")
        if share(1):
            issues.append(f"validity: {pct(share(1))} of stored {subject} have an impossible value or unit")
            advice.append(f"re-validate stored {source} {metric} readings against the current catalogue")
        if share(2) and rule is not None:
            bounds = f"{rule.outlier_low if rule.outlier_low is not None else '-inf'}.." \
                     f"{rule.outlier_high if rule.outlier_high is not None else 'inf'} {rule.canonical_unit}"
            issues.append(f"accuracy: {pct(share(2))} of {subject} are outliers (outside {bounds})")
            advice.append(f"check the placement and calibration of {source} {metric} sensors")
        if share(3):
            issues.append(f"consistency: {pct(share(3))} of {subject} conflict with another reading "
                          "(same event or instant with a different value, or systolic <= diastolic)")
            advice.append(f"deduplicate {source} {metric} readings at the source: one event_id "
                          "and one value per measurement")
        if share(4):
            limit = duration(config.threshold_for(source))
            issues.append(f"timeliness: {pct(share(4))} of {subject} arrived more than {limit} "
                          "after they were measured")
            advice.append(f"sync {source} more often, or raise its timeliness threshold above {limit}, "
                          f"for {metric}")
        if rule is not None:
            units = Counter(field_of(r, "original_unit") for r, _ in rows)
            for unit, count in sorted(units.items(), key=lambda kv: (-kv[1], str(kv[0]))):
                if unit and unit != rule.canonical_unit and count / n >= config.unit_share:
                    advice.append(f"{pct(count / n)} of {subject} arrive as {unit}: "
                                  f"standardise on {rule.canonical_unit}")
    for (reason, source), count in sorted(rejections.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if count:
            issues.append(f"rejected: {count} {source} {metric} records were dead-lettered as {reason}")
            advice.append(_reject_advice(reason, source, metric, config))
    return issues, list(dict.fromkeys(advice))


def _missing(row: Any, config: QualityConfig) -> list[str]:
    return [f for f in (*REQUIRED_FIELDS, *config.expected_fields) if field_of(row, f) in (None, "")]


def _reject_advice(reason: str, source: str, metric: str, config: QualityConfig) -> str:
    rule = config.catalogue.get(metric)
    template = _REJECT_ADVICE.get(reason, "fix the {source} {metric} producer: records are rejected as "
                                          + reason)
    if rule is None:
        if reason in ("unknown_unit", "out_of_range", "missing_field"):
            template = "fix the {source} {metric} producer: records are rejected as " + reason
        return template.format(source=source, metric=metric)
    return template.format(source=source, metric=metric, units=", ".join(sorted(rule.conversions)),
                           lo=f"{rule.min_value:g}", hi=f"{rule.max_value:g}", unit=rule.canonical_unit)
