"""Everything computable from one set of biometry measurements: every GA, every EFW, every centile.

:func:`compute_all` is what the ``python -m inference.biometry`` calculator prints and what the
analysis pipeline can store: one record per formula, each with its identity and flags, plus a list
of what could not be computed and why (a missing measurement, no gestational age for the centiles).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inference.biometry.hadlock import HADLOCK_EFW, HADLOCK_GA, efw_hadlock1985, ga_hadlock1984
from inference.biometry.identity import (
    FetalWeightResult,
    FormulaIdentity,
    GestationalAgeResult,
    SizeCentileResult,
    weeks_days,
)
from inference.biometry.inputs import require_ga_days, require_measurement
from inference.biometry.intergrowth import (
    IG_EFW,
    IG_EFW_FOR_GA,
    IG_GA,
    IG_SIZE,
    efw_centile_intergrowth,
    efw_intergrowth,
    ga_intergrowth,
    size_centile_intergrowth,
)

__all__ = ["MEASUREMENTS", "BiometryReport", "NotComputed", "compute_all", "parse_ga_weeks"]

#: The measurement names the calculator takes, all in millimetres.
MEASUREMENTS: tuple[str, ...] = ("bpd_mm", "hc_mm", "ac_mm", "fl_mm", "ofd_mm")

_CIRCULAR = (
    "needs the gestational age from dates or an early scan (ga_days / --ga-weeks); a GA estimated "
    "from these same measurements would make the centile circular"
)


@dataclass(frozen=True)
class NotComputed:
    """A formula the inputs could not feed, and why."""

    key: str
    name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "name": self.name, "reason": self.reason}


@dataclass(frozen=True)
class BiometryReport:
    """All results for one set of measurements; ``to_dict()`` is the calculator's JSON."""

    measurements_mm: Mapping[str, float]
    ga_days: float | None
    gestational_age: tuple[GestationalAgeResult, ...]
    estimated_fetal_weight: tuple[FetalWeightResult, ...]
    centiles: tuple[SizeCentileResult, ...]
    not_computed: tuple[NotComputed, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        inputs: dict[str, Any] = {k: round(v, 3) for k, v in self.measurements_mm.items()}
        if self.ga_days is not None:
            w, d = weeks_days(self.ga_days)
            inputs["ga_days"] = round(self.ga_days, 2)
            inputs["ga_weeks_days"] = f"{w}w{d}d"
        return {
            "inputs": inputs,
            "units": {"measurements": "mm", "gestational_age": "days (and weeks+days)", "efw": "g"},
            "gestational_age": [r.to_dict() for r in self.gestational_age],
            "estimated_fetal_weight": [r.to_dict() for r in self.estimated_fetal_weight],
            "centiles": [r.to_dict() for r in self.centiles],
            "not_computed": [n.to_dict() for n in self.not_computed],
            "flagged_results": sum(
                1
                for r in (*self.gestational_age, *self.estimated_fetal_weight, *self.centiles)
                if r.flags
            ),
        }


def _missing(identity: FormulaIdentity, have: Mapping[str, float]) -> list[str]:
    return [p for p in identity.inputs if p not in have and p != "ga_days" and p != "efw_g"]


def compute_all(
    measurements_mm: Mapping[str, object], *, ga_days: object | None = None
) -> BiometryReport:
    """Compute every GA, EFW and centile the given measurements allow.

    ``measurements_mm``: any of ``bpd_mm``, ``hc_mm``, ``ac_mm``, ``fl_mm``, ``ofd_mm`` (mm); a
    value of ``None`` means "not measured". ``ga_days``: gestational age from dates or an early scan,
    needed for centiles. Raises ``ValueError`` (naming the parameter) for an unknown name, an
    impossible value, or no measurement at all; formulas whose inputs are missing are listed in
    ``not_computed``; results outside a formula's validity range carry flags.
    """
    unknown = sorted(set(measurements_mm) - set(MEASUREMENTS))
    if unknown:
        raise ValueError(
            f"{unknown[0]}: unknown measurement; expected some of {list(MEASUREMENTS)}"
        )
    have = {
        name: require_measurement(name, value)
        for name, value in measurements_mm.items()
        if value is not None
    }
    if not have:
        raise ValueError(f"no measurement given; give at least one of {list(MEASUREMENTS)}")
    ga = None if ga_days is None else require_ga_days(ga_days)
    skipped: list[NotComputed] = []

    def missing_reason(identity: FormulaIdentity) -> str | None:
        gaps = _missing(identity, have)
        if gaps:
            skipped.append(
                NotComputed(identity.key, identity.name, f"missing measurement: {', '.join(gaps)}")
            )
            return "missing"
        return None

    ages: list[GestationalAgeResult] = []
    for key, eq in HADLOCK_GA.items():
        if missing_reason(eq.identity) is None:
            ages.append(ga_hadlock1984(key, **have))
    for key, eq in IG_GA.items():
        if missing_reason(eq.identity) is None:
            ages.append(ga_intergrowth(key, **have))

    weights: list[FetalWeightResult] = []
    for key, eq in HADLOCK_EFW.items():
        if missing_reason(eq.identity) is None:
            weights.append(efw_hadlock1985(key, **have))
    ig_efw: FetalWeightResult | None = None
    if missing_reason(IG_EFW) is None:
        ig_efw = efw_intergrowth(have["hc_mm"], have["ac_mm"])
        weights.append(ig_efw)

    centiles: list[SizeCentileResult] = []
    for short, standard in IG_SIZE.items():
        identity = standard.identity
        if standard.measurement not in have:
            skipped.append(
                NotComputed(
                    identity.key, identity.name, f"missing measurement: {standard.measurement}"
                )
            )
        elif ga is None:
            skipped.append(NotComputed(identity.key, identity.name, _CIRCULAR))
        else:
            centiles.append(size_centile_intergrowth(short, have[standard.measurement], ga))
    if ig_efw is None:
        skipped.append(
            NotComputed(
                IG_EFW_FOR_GA.key,
                IG_EFW_FOR_GA.name,
                "needs the INTERGROWTH-21st EFW (missing measurement: "
                + ", ".join(_missing(IG_EFW, have))
                + ")",
            )
        )
    elif ga is None:
        skipped.append(NotComputed(IG_EFW_FOR_GA.key, IG_EFW_FOR_GA.name, _CIRCULAR))
    else:
        centiles.append(efw_centile_intergrowth(ig_efw.value, ga))

    return BiometryReport(
        measurements_mm=have,
        ga_days=ga,
        gestational_age=tuple(ages),
        estimated_fetal_weight=tuple(weights),
        centiles=tuple(centiles),
        not_computed=tuple(skipped),
    )


_WEEKS_DAYS = re.compile(r"^\s*(\d+)\s*(?:\+|w)\s*(\d)\s*d?\s*$")


def parse_ga_weeks(text: str) -> float:
    """Gestational age in days from ``"20"``, ``"20.5"`` (weeks) or ``"20+3"`` / ``"20w3d"``.

    Raises ``ValueError`` naming ``ga_weeks`` when the text is none of these.
    """
    match = _WEEKS_DAYS.match(text)
    if match:
        weeks, days = int(match.group(1)), int(match.group(2))
        if days > 6:
            raise ValueError(f"ga_weeks: {text!r} — days after '+' must be 0-6")
        return weeks * 7.0 + days
    try:
        weeks_f = float(text)
    except ValueError:
        raise ValueError(
            f"ga_weeks: {text!r} is not a gestational age; write weeks (20, 20.5) or weeks+days (20+3)"
        ) from None
    return weeks_f * 7.0
