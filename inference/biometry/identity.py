"""Formula identities, validity ranges, flags and result records for fetal biometry.

Every derived value (gestational age, estimated fetal weight, size centile) carries the identity of
the equation or chart that produced it, so that a report, a DICOM SR (TID 5008 rows 4 and 8, TID 315)
or an audit can say exactly which formula was used. Inputs outside a formula's validity range are
never extrapolated silently: the value is still computed (the clinician may need it) but the result
carries one :class:`Flag` per violated range, naming the range.

Provenance tags in docstrings follow ``shared/reference/anchors.md``: [V] verified from the source
text, [V-impl] verified from a public implementation's source, [M] unverified.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DicomCode",
    "FetalWeightResult",
    "Flag",
    "FormulaIdentity",
    "GestationalAgeResult",
    "SizeCentileResult",
    "ValidityRange",
    "check_validity",
    "weeks_days",
]


@dataclass(frozen=True)
class DicomCode:
    """A coded concept (DICOM code sequence triplet), e.g. ``("LN", "11932-1", "HC, Hadlock 1984")``."""

    scheme_designator: str
    code_value: str
    code_meaning: str
    context_group: str | None = None
    """The DICOM context group (CID) the code was read from, e.g. ``"CID 12013"``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme_designator": self.scheme_designator,
            "code_value": self.code_value,
            "code_meaning": self.code_meaning,
            "context_group": self.context_group,
        }


@dataclass(frozen=True)
class ValidityRange:
    """A closed range ``[low, high]`` of one named quantity within which a formula was derived.

    ``parameter`` names an input (``"hc_mm"``, ``"ga_days"`` for a chart's gestational age) or the
    formula's own output (``"ga_days"`` of a dating formula, ``"efw_g"``); ``basis`` says where the
    range comes from and carries the [V]/[V-impl]/[M] tag of that fact.
    """

    parameter: str
    low: float
    high: float
    unit: str
    basis: str

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameter": self.parameter,
            "low": _round(self.low, 3),
            "high": _round(self.high, 3),
            "unit": self.unit,
            "basis": self.basis,
        }


@dataclass(frozen=True)
class FormulaIdentity:
    """Who a number comes from: the equation or chart, its publication and its DICOM code.

    ``key`` is stable and machine-readable (``"ga.hadlock1984.hc"``); store it with the result.
    ``dicom_code`` is ``None`` where no code exists in the context group read (see ``code_note``).
    ``inputs`` lists the input parameter names in the units the public API takes (mm, g, days);
    ``equation`` restates the equation in the units of the publication.
    """

    key: str
    name: str
    reference: str
    inputs: tuple[str, ...]
    output: str
    equation: str
    validity: tuple[ValidityRange, ...] = ()
    dicom_code: DicomCode | None = None
    code_note: str = ""
    provenance: str = ""
    """[V], [V-impl] or [M] for the equation's coefficients, with the source read."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "reference": self.reference,
            "inputs": list(self.inputs),
            "output": self.output,
            "equation": self.equation,
            "validity": [v.to_dict() for v in self.validity],
            "dicom_code": self.dicom_code.to_dict() if self.dicom_code else None,
            "code_note": self.code_note,
            "provenance": self.provenance,
        }


@dataclass(frozen=True)
class Flag:
    """A warning attached to a result; ``code`` is machine-readable, ``message`` is for people."""

    code: str
    message: str
    parameter: str | None = None
    value: float | None = None
    low: float | None = None
    high: float | None = None
    unit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "parameter": self.parameter,
            "value": _round(self.value, 3),
            "low": _round(self.low, 3),
            "high": _round(self.high, 3),
            "unit": self.unit,
        }


OUTSIDE_VALIDITY = "outside_validity_range"


def check_validity(identity: FormulaIdentity, values: Mapping[str, float]) -> tuple[Flag, ...]:
    """One ``outside_validity_range`` flag per validity range of ``identity`` that ``values`` break.

    ``values`` maps parameter names (inputs and the output) to numbers; ranges whose parameter is
    absent from ``values`` are not checked.
    """
    flags: list[Flag] = []
    for rng in identity.validity:
        if rng.parameter not in values:
            continue
        value = float(values[rng.parameter])
        if not rng.contains(value):
            flags.append(
                Flag(
                    code=OUTSIDE_VALIDITY,
                    message=(
                        f"{rng.parameter} = {value:.4g} {rng.unit} is outside the range "
                        f"{rng.low:.4g}–{rng.high:.4g} {rng.unit} of {identity.name} "
                        f"({rng.basis}); the value is an extrapolation"
                    ),
                    parameter=rng.parameter,
                    value=value,
                    low=rng.low,
                    high=rng.high,
                    unit=rng.unit,
                )
            )
    return tuple(flags)


def weeks_days(ga_days: float) -> tuple[int, int]:
    """Completed weeks and days of a gestational age in (fractional) days: 141.5 → (20, 1)."""
    whole = math.floor(ga_days)
    return whole // 7, whole % 7


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


@dataclass(frozen=True)
class _Result:
    formula: FormulaIdentity
    inputs: Mapping[str, float]
    flags: tuple[Flag, ...] = field(default=())

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


@dataclass(frozen=True)
class GestationalAgeResult(_Result):
    """A gestational-age estimate in days (fractional), with weeks+days for display.

    ``value`` is in days (unit ``"d"``, UCUM, as TID 5008 row 3 requires); ``weeks`` is
    ``value / 7``; ``weeks_days`` gives completed weeks and days (141.5 d → 20 weeks 1 day).
    """

    value: float = math.nan
    unit: str = "d"

    @property
    def weeks(self) -> float:
        return self.value / 7.0

    @property
    def weeks_days(self) -> tuple[int, int]:
        return weeks_days(self.value)

    def to_dict(self) -> dict[str, Any]:
        w, d = self.weeks_days
        return {
            "formula": self.formula.to_dict(),
            "inputs": {k: round(v, 3) for k, v in self.inputs.items()},
            "ga_days": round(self.value, 1),
            "ga_weeks": round(self.weeks, 2),
            "ga_weeks_days": f"{w}w{d}d",
            "unit": self.unit,
            "flags": [f.to_dict() for f in self.flags],
        }


@dataclass(frozen=True)
class FetalWeightResult(_Result):
    """An estimated fetal weight in grams."""

    value: float = math.nan
    unit: str = "g"

    def to_dict(self) -> dict[str, Any]:
        return {
            "formula": self.formula.to_dict(),
            "inputs": {k: round(v, 3) for k, v in self.inputs.items()},
            "efw_g": round(self.value, 1),
            "unit": self.unit,
            "flags": [f.to_dict() for f in self.flags],
        }


@dataclass(frozen=True)
class SizeCentileResult(_Result):
    """Where a measurement (or EFW) lies in a reference standard at a given gestational age.

    ``measurement`` names what was placed on the chart (``"hc_mm"``, ``"efw_g"``), ``value`` is its
    value, ``z`` the z-score, ``centile`` the percentile (0–100, Φ(z)·100), ``expected_median`` the
    chart's median at that GA (and ``expected_sd`` its SD where the chart is normal, else ``None``).
    """

    measurement: str = ""
    value: float = math.nan
    unit: str = ""
    ga_days: float = math.nan
    z: float = math.nan
    centile: float = math.nan
    expected_median: float = math.nan
    expected_sd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "formula": self.formula.to_dict(),
            "measurement": self.measurement,
            "value": round(self.value, 3),
            "unit": self.unit,
            "ga_days": round(self.ga_days, 1),
            "z": round(self.z, 3),
            "centile": round(self.centile, 2),
            "expected_median": round(self.expected_median, 2),
            "expected_sd": None if self.expected_sd is None else round(self.expected_sd, 3),
            "flags": [f.to_dict() for f in self.flags],
        }
