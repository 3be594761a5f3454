"""Validation of biometry inputs: reject what cannot be a measurement, before any formula runs.

Two tiers, on purpose:

* **Impossible** values (missing, not a number, NaN, ±inf, zero, negative, or beyond a physical
  ceiling no fetus reaches, e.g. HC 5000 mm — usually a unit slip) raise :class:`ValueError`
  naming the parameter and why. No formula result is produced from them.
* **Possible but outside a formula's validity range** (an HC of 380 mm at term, a GA of 12 weeks on
  a chart that starts at 14) are not errors: the formula runs and its result carries a flag
  (see :func:`inference.biometry.identity.check_validity`).

The ceilings below are project-chosen plausibility limits (about 1.4× the largest value any chart in
anchors.md reaches at 42 weeks), not clinical reference values.
"""

from __future__ import annotations

import math
from numbers import Real

__all__ = ["PLAUSIBLE_MAX", "require_ga_days", "require_measurement"]

#: Upper plausibility limits, in the unit of each parameter (mm, g, days). Project choice.
PLAUSIBLE_MAX: dict[str, float] = {
    "bpd_mm": 150.0,
    "ofd_mm": 200.0,
    "hc_mm": 500.0,
    "ac_mm": 600.0,
    "fl_mm": 120.0,
    "efw_g": 8000.0,
    "ga_days": 50 * 7.0,
}

_NAMES = {
    "bpd_mm": "biparietal diameter (BPD)",
    "ofd_mm": "occipito-frontal diameter (OFD)",
    "hc_mm": "head circumference (HC)",
    "ac_mm": "abdominal circumference (AC)",
    "fl_mm": "femur length (FL)",
    "efw_g": "estimated fetal weight (EFW)",
    "ga_days": "gestational age",
}

_UNITS = {"efw_g": "g", "ga_days": "days"}


def require_measurement(name: str, value: object) -> float:
    """Return ``value`` as a float if it can be a fetal measurement called ``name``, else raise.

    ``name`` is a key of :data:`PLAUSIBLE_MAX` (``"hc_mm"``, ``"efw_g"``, …); the unit is in the name.
    Raises ``ValueError("hc_mm: missing measurement …")`` and the like, always naming the parameter.
    """
    label = _NAMES.get(name, name)
    unit = _UNITS.get(name, "mm")
    if value is None:
        raise ValueError(f"{name}: missing measurement — the {label} is needed for this formula")
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name}: {value!r} is not a number ({label} in {unit})")
    number = float(value)
    if math.isnan(number):
        raise ValueError(f"{name}: NaN is not a measurement ({label} in {unit})")
    if math.isinf(number):
        raise ValueError(f"{name}: {number} is not a finite measurement ({label} in {unit})")
    if number <= 0:
        raise ValueError(f"{name}: {number:g} {unit} — the {label} must be positive")
    ceiling = PLAUSIBLE_MAX.get(name)
    if ceiling is not None and number > ceiling:
        raise ValueError(
            f"{name}: {number:g} {unit} is not a plausible {label} (above {ceiling:g} {unit}); "
            f"check the unit — inputs are in {unit}"
        )
    return number


def require_ga_days(value: object) -> float:
    """Validate a gestational age in days (from dates or an early scan) as for measurements."""
    return require_measurement("ga_days", value)
