"""The metric catalogue: canonical UCUM unit, LOINC code, accepted units and bounds per metric.

A :class:`MetricRule` is immutable and built once at start-up; every lookup table the hot
path needs (the case-folded unit map) is computed in its constructor. Configuration
mistakes raise :class:`~streams.errors.ConfigurationError`; a bad *reading* raises
:class:`~streams.errors.Rejected`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from streams.errors import ConfigurationError, Rejected, RejectReason

#: Lower-cased unit spellings that must never be reached by case folding, because in UCUM
#: the case carries meaning: ``Cal`` is the kilocalorie but ``cal`` the small calorie.
CASE_SENSITIVE_UNITS: frozenset[str] = frozenset({"cal"})

_MAX_UNIT_IN_MESSAGE = 40


@dataclass(frozen=True, slots=True)
class Conversion:
    """An affine conversion to the canonical unit: ``(value + offset) * factor / divisor``.

    ``divisor`` exists so that "÷ 1000" or "× 5/9" stay exact for the usual inputs.
    """

    factor: float = 1.0
    divisor: float = 1.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        for name in ("factor", "divisor", "offset"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigurationError(f"conversion {name} must be a finite number")
        if self.factor == 0 or self.divisor == 0:
            raise ConfigurationError("conversion factor and divisor must be non-zero")


IDENTITY = Conversion()


@dataclass(frozen=True, slots=True)
class MetricRule:
    """Everything needed to accept, convert and judge one metric.

    Range contract (applied to the canonical value): a value is *possible* when
    ``min_value <= v <= max_value`` (``min_value < v`` if ``min_exclusive``), otherwise it
    is rejected ``out_of_range``. A possible value is an *outlier* when
    ``v < outlier_low`` or ``v > outlier_high`` (a ``None`` bound never triggers).

    ``folded_units`` is derived: lower-cased spelling -> conversion, holding only the
    spellings that are unambiguous (no two accepted units with different conversions fold
    together, and the spelling is not in :data:`CASE_SENSITIVE_UNITS`).
    """

    name: str
    canonical_unit: str
    loinc_code: str
    conversions: Mapping[str, Conversion] = field(hash=False)
    min_value: float
    max_value: float
    min_exclusive: bool = False
    outlier_low: float | None = None
    outlier_high: float | None = None
    folded_units: Mapping[str, Conversion] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip().lower():
            raise ConfigurationError(f"metric name {self.name!r} must be non-empty, stripped, lower-case")
        if not self.loinc_code or not self.canonical_unit:
            raise ConfigurationError(f"{self.name}: loinc_code and canonical_unit must be non-empty")
        for bound in ("min_value", "max_value", "outlier_low", "outlier_high"):
            v = getattr(self, bound)
            if v is None and bound.startswith("outlier"):
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigurationError(f"{self.name}: {bound} must be a finite number")
        if self.min_value > self.max_value:
            raise ConfigurationError(f"{self.name}: min_value is greater than max_value")
        convs = dict(self.conversions)
        for unit, conv in convs.items():
            if not isinstance(unit, str) or not unit or unit != unit.strip():
                raise ConfigurationError(f"{self.name}: unit {unit!r} must be a non-empty stripped string")
            if not isinstance(conv, Conversion):
                raise ConfigurationError(f"{self.name}: conversion for {unit!r} must be a Conversion")
        if convs.get(self.canonical_unit) != IDENTITY:
            raise ConfigurationError(
                f"{self.name}: canonical unit must be accepted with the identity conversion"
            )
        object.__setattr__(self, "conversions", MappingProxyType(convs))
        object.__setattr__(self, "folded_units", MappingProxyType(_fold(convs)))

    def is_possible(self, value: float) -> bool:
        """Whether the canonical ``value`` is physically possible (see the class contract)."""
        if self.min_exclusive:
            return self.min_value < value <= self.max_value
        return self.min_value <= value <= self.max_value

    def outlier_bound(self, value: float) -> float | None:
        """The outlier bound the canonical ``value`` crosses, or ``None`` if it is not an outlier."""
        low, high = self.outlier_low, self.outlier_high
        if low is not None and value < low:
            return low
        if high is not None and value > high:
            return high
        return None


def _fold(conversions: Mapping[str, Conversion]) -> dict[str, Conversion]:
    folded: dict[str, Conversion] = {}
    ambiguous: set[str] = set()
    for unit, conv in conversions.items():
        key = unit.lower()
        if key in CASE_SENSITIVE_UNITS:
            continue
        if key in folded and folded[key] != conv:
            ambiguous.add(key)
        folded.setdefault(key, conv)
    for key in ambiguous:
        del folded[key]
    return folded


def resolve_unit(rule: MetricRule, unit: str) -> Conversion:
    """The conversion from ``unit`` to ``rule.canonical_unit``.

    Tries, in order: the exact spelling; the spelling stripped of surrounding whitespace;
    the stripped, lower-cased spelling in ``rule.folded_units``. Raises
    ``Rejected(UNKNOWN_UNIT)`` if none matches (the message names the unit and metric only).
    """
    conv = rule.conversions.get(unit)
    if conv is not None:
        return conv
    stripped = unit.strip()
    conv = rule.conversions.get(stripped) or rule.folded_units.get(stripped.lower())
    if conv is not None:
        return conv
    shown = stripped if len(stripped) <= _MAX_UNIT_IN_MESSAGE else stripped[:_MAX_UNIT_IN_MESSAGE] + "..."
    raise Rejected(RejectReason.UNKNOWN_UNIT, f"unit {shown!r} is not accepted for metric {rule.name}")


def _units(canonical: str, *groups: tuple[Conversion, tuple[str, ...]]) -> dict[str, Conversion]:
    table = {canonical: IDENTITY}
    for conv, names in groups:
        for n in names:
            table[n] = conv
    return table


# fmt: off
_PER_MINUTE_BEATS = _units("/min", (IDENTITY, ("bpm", "beats_per_minute", "beats/min")))
_MMHG = _units("mm[Hg]", (IDENTITY, ("mmHg",)), (Conversion(factor=7.50062), ("kPa",)))

_DEFAULT_RULES = (
    MetricRule(
        "heart_rate", "/min", "8867-4", _PER_MINUTE_BEATS,
        min_value=0, max_value=300, outlier_low=30, outlier_high=220,
    ),
    # A daily value computed by the device (Fitbit, Apple Health): its own metric, so that it
    # never mixes into the aggregates of raw heart-rate samples.
    MetricRule(
        "resting_heart_rate", "/min", "40443-4", _PER_MINUTE_BEATS,
        min_value=0, max_value=300, outlier_low=25, outlier_high=130,
    ),
    MetricRule(
        "steps", "{steps}", "55423-8", _units("{steps}", (IDENTITY, ("steps", "count"))),
        min_value=0, max_value=100_000, outlier_high=50_000,
    ),
    MetricRule(
        "oxygen_saturation", "%", "59408-5",
        _units("%", (IDENTITY, ("percent",)), (Conversion(factor=100), ("1", "ratio"))),
        min_value=0, max_value=100, outlier_low=70,
    ),
    MetricRule(
        "blood_pressure_systolic", "mm[Hg]", "8480-6", _MMHG,
        min_value=0, max_value=350, outlier_low=70, outlier_high=250,
    ),
    MetricRule(
        "blood_pressure_diastolic", "mm[Hg]", "8462-4", _MMHG,
        min_value=0, max_value=250, outlier_low=40, outlier_high=150,
    ),
    MetricRule(
        "blood_glucose", "mg/dL", "2339-0", _units("mg/dL", (Conversion(factor=18.016), ("mmol/L",))),
        min_value=0, max_value=2000, outlier_low=40, outlier_high=600,
    ),
    MetricRule(
        "body_weight", "kg", "29463-7",
        _units(
            "kg",
            (Conversion(divisor=1000), ("g",)),
            (Conversion(factor=0.45359237), ("lb", "lbs", "[lb_av]")),
            (Conversion(factor=0.028349523125), ("oz", "[oz_av]")),
        ),
        min_value=0, max_value=700, min_exclusive=True, outlier_low=20, outlier_high=350,
    ),
    MetricRule(
        "body_temperature", "Cel", "8310-5",
        _units(
            "Cel",
            (IDENTITY, ("C", "°C", "celsius")),
            (Conversion(factor=5, divisor=9, offset=-32), ("[degF]", "F", "°F", "fahrenheit")),
            (Conversion(offset=-273.15), ("K",)),
        ),
        min_value=20, max_value=46, outlier_low=34, outlier_high=42,
    ),
    MetricRule(
        "respiratory_rate", "/min", "9279-1", _units("/min", (IDENTITY, ("breaths/min", "rpm"))),
        min_value=0, max_value=120, outlier_low=6, outlier_high=60,
    ),
    MetricRule(
        "sleep_duration", "min", "93832-4",
        _units(
            "min",
            (IDENTITY, ("minutes",)),
            (Conversion(factor=60), ("h", "hours")),
            (Conversion(divisor=60), ("s", "sec")),
        ),
        min_value=0, max_value=1440, outlier_high=960,
    ),
    MetricRule(
        "active_energy", "kcal", "41981-2",
        _units("kcal", (IDENTITY, ("Cal",)), (Conversion(divisor=4.184), ("kJ",))),
        min_value=0, max_value=20_000, outlier_high=10_000,
    ),
    MetricRule(
        "body_height", "cm", "8302-2",
        _units(
            "cm",
            (Conversion(factor=100), ("m",)),
            (Conversion(divisor=10), ("mm",)),
            (Conversion(factor=2.54), ("in", "[in_i]")),
            (Conversion(factor=30.48), ("ft", "[ft_i]")),
        ),
        min_value=0, max_value=300, min_exclusive=True, outlier_low=40, outlier_high=250,
    ),
    MetricRule(
        "body_mass_index", "kg/m2", "39156-5", _units("kg/m2", (IDENTITY, ("kg/m^2", "kg/m²"))),
        min_value=0, max_value=200, min_exclusive=True, outlier_low=10, outlier_high=80,
    ),
    MetricRule(
        "body_fat_percentage", "%", "41982-0",
        _units("%", (IDENTITY, ("percent",)), (Conversion(factor=100), ("1", "ratio"))),
        min_value=0, max_value=100, outlier_low=2, outlier_high=75,
    ),
)
# fmt: on

#: The built-in catalogue, keyed by metric name. Read-only.
DEFAULT_CATALOGUE: Mapping[str, MetricRule] = MappingProxyType({r.name: r for r in _DEFAULT_RULES})

_OVERRIDABLE = frozenset(
    {"loinc_code", "min_value", "max_value", "min_exclusive", "outlier_low", "outlier_high", "units"}
)
_NEW_METRIC_REQUIRED = frozenset({"canonical_unit", "loinc_code", "min_value", "max_value"})


def _conversion(metric: str, unit: str, spec: Any) -> Conversion:
    if isinstance(spec, Conversion):
        return spec
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return Conversion(factor=spec)
    if isinstance(spec, Mapping) and set(spec) <= {"factor", "divisor", "offset"}:
        return Conversion(**spec)
    raise ConfigurationError(
        f"{metric}: unit {unit!r} needs a number (factor), a Conversion, "
        "or a mapping of factor/divisor/offset"
    )


def build_catalogue(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, MetricRule]:
    """The default catalogue with ``overrides`` applied; defaults are never mutated.

    ``overrides`` maps a metric name (stripped and lower-cased) to any of:
    ``loinc_code``, ``min_value``, ``max_value``, ``min_exclusive``, ``outlier_low``,
    ``outlier_high`` (``None`` disables that side) and ``units`` (accepted unit -> a
    factor, a :class:`Conversion`, or ``{"factor", "divisor", "offset"}``), which *adds*
    to or replaces entries of the metric's accepted units. A metric not in the defaults
    is added; it must also give ``canonical_unit`` (always accepted as the identity),
    ``loinc_code``, ``min_value`` and ``max_value``. Raises ``ConfigurationError`` on an
    unknown key, a changed canonical unit, or an inconsistent rule.
    """
    catalogue = dict(DEFAULT_CATALOGUE)
    for raw_name, spec in (overrides or {}).items():
        name = str(raw_name).strip().lower()
        base = catalogue.get(name)
        keys = set(spec)
        if base is None:
            unknown = keys - _OVERRIDABLE - {"canonical_unit"}
            missing = _NEW_METRIC_REQUIRED - keys
            if unknown or missing:
                raise ConfigurationError(
                    f"new metric {name!r}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}"
                )
            canonical = spec["canonical_unit"]
            conversions: dict[str, Conversion] = {canonical: IDENTITY}
            params: dict[str, Any] = {}
        else:
            unknown = keys - _OVERRIDABLE
            if "canonical_unit" in keys and spec["canonical_unit"] == base.canonical_unit:
                unknown.discard("canonical_unit")
            if unknown:
                raise ConfigurationError(f"metric {name!r}: cannot override {sorted(unknown)}")
            canonical = base.canonical_unit
            conversions = dict(base.conversions)
            params = {
                "loinc_code": base.loinc_code,
                "min_value": base.min_value,
                "max_value": base.max_value,
                "min_exclusive": base.min_exclusive,
                "outlier_low": base.outlier_low,
                "outlier_high": base.outlier_high,
            }
        for unit, conv in (spec.get("units") or {}).items():
            conversions[str(unit).strip()] = _conversion(name, unit, conv)
        params.update({k: v for k, v in spec.items() if k in _OVERRIDABLE and k != "units"})
        catalogue[name] = MetricRule(name, canonical, conversions=conversions, **params)
    return catalogue
