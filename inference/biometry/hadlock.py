"""Hadlock gestational-age (1984) and estimated-fetal-weight (1985) equations.

Equations exactly as in ``shared/reference/anchors.md`` section 4(b); the coefficients there are
[V-impl]: identical in at least four independent public implementations (e.g.
``simpar1471/whoFetalStandards`` R/hadlock.R); the primary papers' tables were not read.

* Hadlock FP, Deter RL, Harrist RB, Park SK. Estimating fetal age: computer-assisted analysis of
  multiple fetal growth parameters. Radiology 1984;152:497–501. Cross-sectional study of **361
  fetuses between 14 and 42 menstrual weeks** ([V] from the paper's abstract, read as a scanned copy,
  ru.scribd.com/document/413022077) → dating validity range 14–42 weeks.
* Hadlock FP, Harrist RB, Sharman RS, Deter RL, Park SK. Estimation of fetal weight with the use of
  head, body, and femur measurements — a prospective study. Am J Obstet Gynecol 1985;151:333–7.
  The weight range of that study's population was **not verified** [M]; EFW inputs are checked
  against the dating ranges (each measurement within what the 1984 equations map to 14–42 weeks),
  a project-chosen envelope, and flagged outside it.

The public API takes millimetres and returns days (GA) or grams (EFW); the equations themselves are in
centimetres and weeks, as published. DICOM codes are LOINC codes from CID 12013 (GA equations) and
CID 12014 (OB fetal body weight equations), read from ``bvdh/dicom-terminology-in-fhir``
ValueSet-dicom-cid-12013/12014 (versions 20061024 / 20030130). The multi-parameter Hadlock 1984 GA
equations have no code in that CID 12013 value set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from inference.biometry.identity import (
    DicomCode,
    FetalWeightResult,
    Flag,
    FormulaIdentity,
    GestationalAgeResult,
    ValidityRange,
    check_validity,
)
from inference.biometry.inputs import require_measurement

__all__ = [
    "HADLOCK_EFW",
    "HADLOCK_GA",
    "efw_hadlock1985",
    "ga_hadlock1984",
]

HADLOCK_1984 = (
    "Hadlock FP, Deter RL, Harrist RB, Park SK. Estimating fetal age: computer-assisted analysis "
    "of multiple fetal growth parameters. Radiology 1984;152:497-501"
)
HADLOCK_1985 = (
    "Hadlock FP, Harrist RB, Sharman RS, Deter RL, Park SK. Estimation of fetal weight with the use "
    "of head, body, and femur measurements - a prospective study. Am J Obstet Gynecol "
    "1985;151:333-7"
)
_PROVENANCE = (
    "[V-impl] coefficients as in anchors.md 4(b), identical in >=4 public implementations; "
    "primary table not read"
)
_GA_BASIS = "Hadlock 1984 study population 14-42 menstrual weeks [V, abstract]"
_GA_MIN_WEEKS, _GA_MAX_WEEKS = 14.0, 42.0


# --- equations in publication units (cm → weeks; cm → log10 g) -------------------------------------
def _ga_bpd(bpd: float) -> float:
    return 9.54 + 1.482 * bpd + 0.1676 * bpd**2


def _ga_hc(hc: float) -> float:
    return 8.96 + 0.540 * hc + 0.0003 * hc**3


def _ga_ac(ac: float) -> float:
    return 8.14 + 0.753 * ac + 0.0036 * ac**2


def _ga_fl(fl: float) -> float:
    return 10.35 + 2.460 * fl + 0.170 * fl**2


def _invert_increasing(f: Callable[[float], float], target: float) -> float:
    """x in (0, 100] cm with f(x) = target, for f increasing there (bisection; 60 steps ≈ 1e-16)."""
    lo, hi = 1e-6, 100.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _dating_range_mm(name: str, f: Callable[[float], float]) -> ValidityRange:
    """Input range (mm) that the single-parameter 1984 equation maps onto 14–42 weeks."""
    low = 10.0 * _invert_increasing(f, _GA_MIN_WEEKS)
    high = 10.0 * _invert_increasing(f, _GA_MAX_WEEKS)
    return ValidityRange(
        parameter=name,
        low=low,
        high=high,
        unit="mm",
        basis=(
            f"{name} that Hadlock 1984's single-parameter equation maps to 14-42 weeks "
            "(derived here from the study's 14-42 week population)"
        ),
    )


_INPUT_RANGES: dict[str, ValidityRange] = {
    "bpd_mm": _dating_range_mm("bpd_mm", _ga_bpd),
    "hc_mm": _dating_range_mm("hc_mm", _ga_hc),
    "ac_mm": _dating_range_mm("ac_mm", _ga_ac),
    "fl_mm": _dating_range_mm("fl_mm", _ga_fl),
}
_GA_OUTPUT_RANGE = ValidityRange(
    parameter="ga_days",
    low=_GA_MIN_WEEKS * 7,
    high=_GA_MAX_WEEKS * 7,
    unit="d",
    basis=_GA_BASIS,
)


@dataclass(frozen=True)
class _Equation:
    identity: FormulaIdentity
    compute: Callable[[Mapping[str, float]], float]
    """Takes the inputs in cm (keys without ``_mm``); returns weeks (GA) or log10 grams (EFW)."""


def _ga_identity(
    key: str, params: tuple[str, ...], equation: str, code: tuple[str, str] | None
) -> FormulaIdentity:
    label = "+".join(p.removesuffix("_mm").upper() for p in params)
    return FormulaIdentity(
        key=f"ga.hadlock1984.{key}",
        name=f"Gestational age from {label}, Hadlock 1984",
        reference=HADLOCK_1984,
        inputs=params,
        output="ga_days",
        equation=f"GA (weeks) = {equation}   [measurements in cm]",
        # One input: its range is the 14-42 week range itself; several: each input and the result.
        validity=(
            (_INPUT_RANGES[params[0]],)
            if len(params) == 1
            else (*(_INPUT_RANGES[p] for p in params), _GA_OUTPUT_RANGE)
        ),
        dicom_code=(DicomCode("LN", code[0], code[1], context_group="CID 12013") if code else None),
        code_note=(
            ""
            if code
            else "no code for this multi-parameter equation in the CID 12013 value set read "
            "(version 20061024)"
        ),
        provenance=_PROVENANCE
        + (
            "; multi-parameter forms as tabulated by perinatology.com, quoted in a public "
            "implementation"
            if len(params) > 1
            else ""
        ),
    )


HADLOCK_GA: dict[str, _Equation] = {
    "bpd": _Equation(
        _ga_identity(
            "bpd", ("bpd_mm",), "9.54 + 1.482*BPD + 0.1676*BPD^2", ("11902-4", "BPD, Hadlock 1984")
        ),
        lambda m: _ga_bpd(m["bpd"]),
    ),
    "hc": _Equation(
        _ga_identity(
            "hc", ("hc_mm",), "8.96 + 0.540*HC + 0.0003*HC^3", ("11932-1", "HC, Hadlock 1984")
        ),
        lambda m: _ga_hc(m["hc"]),
    ),
    "ac": _Equation(
        _ga_identity(
            "ac", ("ac_mm",), "8.14 + 0.753*AC + 0.0036*AC^2", ("11892-7", "AC, Hadlock 1984")
        ),
        lambda m: _ga_ac(m["ac"]),
    ),
    "fl": _Equation(
        _ga_identity(
            "fl", ("fl_mm",), "10.35 + 2.460*FL + 0.170*FL^2", ("11920-6", "FL, Hadlock 1984")
        ),
        lambda m: _ga_fl(m["fl"]),
    ),
    "bpd_hc_ac_fl": _Equation(
        _ga_identity(
            "bpd_hc_ac_fl",
            ("bpd_mm", "hc_mm", "ac_mm", "fl_mm"),
            "10.85 + 0.06*HC*FL + 0.67*BPD + 0.168*AC",
            None,
        ),
        lambda m: 10.85 + 0.06 * m["hc"] * m["fl"] + 0.67 * m["bpd"] + 0.168 * m["ac"],
    ),
    "hc_ac_fl": _Equation(
        _ga_identity(
            "hc_ac_fl",
            ("hc_mm", "ac_mm", "fl_mm"),
            "10.33 + 0.031*HC*FL + 0.361*HC + 0.0298*AC*FL",
            None,
        ),
        lambda m: 10.33 + 0.031 * m["hc"] * m["fl"] + 0.361 * m["hc"] + 0.0298 * m["ac"] * m["fl"],
    ),
    "bpd_ac_fl": _Equation(
        _ga_identity(
            "bpd_ac_fl",
            ("bpd_mm", "ac_mm", "fl_mm"),
            "10.61 + 0.175*BPD*FL + 0.297*AC + 0.71*FL",
            None,
        ),
        lambda m: 10.61 + 0.175 * m["bpd"] * m["fl"] + 0.297 * m["ac"] + 0.71 * m["fl"],
    ),
    "ac_fl": _Equation(
        _ga_identity(
            "ac_fl", ("ac_mm", "fl_mm"), "10.47 + 0.442*AC + 0.314*FL^2 - 0.0121*FL^3", None
        ),
        lambda m: 10.47 + 0.442 * m["ac"] + 0.314 * m["fl"] ** 2 - 0.0121 * m["fl"] ** 3,
    ),
    "hc_ac": _Equation(
        _ga_identity("hc_ac", ("hc_mm", "ac_mm"), "10.31 + 0.012*HC^2 + 0.385*AC", None),
        lambda m: 10.31 + 0.012 * m["hc"] ** 2 + 0.385 * m["ac"],
    ),
    "bpd_fl": _Equation(
        _ga_identity(
            "bpd_fl", ("bpd_mm", "fl_mm"), "10.5 + 0.197*BPD*FL + 0.95*FL + 0.73*BPD", None
        ),
        lambda m: 10.5 + 0.197 * m["bpd"] * m["fl"] + 0.95 * m["fl"] + 0.73 * m["bpd"],
    ),
}


def _efw_identity(
    key: str, params: tuple[str, ...], equation: str, code: tuple[str, str]
) -> FormulaIdentity:
    label = "+".join(p.removesuffix("_mm").upper() for p in params)
    return FormulaIdentity(
        key=f"efw.hadlock1985.{key}",
        name=f"Estimated fetal weight from {label}, Hadlock 1985",
        reference=HADLOCK_1985,
        inputs=params,
        output="efw_g",
        equation=f"log10 EFW (g) = {equation}   [measurements in cm]",
        validity=tuple(_INPUT_RANGES[p] for p in params),
        dicom_code=DicomCode("LN", code[0], code[1], context_group="CID 12014"),
        code_note=(
            "validity: each input within its Hadlock 1984 14-42 week dating range, a project "
            "choice; the 1985 study's own weight range is unverified [M]"
        ),
        provenance=_PROVENANCE,
    )


HADLOCK_EFW: dict[str, _Equation] = {
    # The 4-parameter form ("Hadlock 4").
    "bpd_hc_ac_fl": _Equation(
        _efw_identity(
            "bpd_hc_ac_fl",
            ("bpd_mm", "hc_mm", "ac_mm", "fl_mm"),
            "1.3596 - 0.00386*AC*FL + 0.0064*HC + 0.00061*BPD*AC + 0.0424*AC + 0.174*FL",
            ("11732-5", "EFW by AC, BPD, FL, HC, Hadlock 1985"),
        ),
        lambda m: (
            1.3596
            - 0.00386 * m["ac"] * m["fl"]
            + 0.0064 * m["hc"]
            + 0.00061 * m["bpd"] * m["ac"]
            + 0.0424 * m["ac"]
            + 0.174 * m["fl"]
        ),
    ),
    # The 3-parameter form without BPD ("Hadlock 3").
    "hc_ac_fl": _Equation(
        _efw_identity(
            "hc_ac_fl",
            ("hc_mm", "ac_mm", "fl_mm"),
            "1.326 - 0.00326*AC*FL + 0.0107*HC + 0.0438*AC + 0.158*FL",
            ("11746-5", "EFW by AC, FL, HC, Hadlock 1985"),
        ),
        lambda m: (
            1.326
            - 0.00326 * m["ac"] * m["fl"]
            + 0.0107 * m["hc"]
            + 0.0438 * m["ac"]
            + 0.158 * m["fl"]
        ),
    ),
    "bpd_ac_fl": _Equation(
        _efw_identity(
            "bpd_ac_fl",
            ("bpd_mm", "ac_mm", "fl_mm"),
            "1.335 - 0.0034*AC*FL + 0.0316*BPD + 0.0457*AC + 0.1623*FL",
            ("11735-8", "EFW by AC, BPD, FL, Hadlock 1985"),
        ),
        lambda m: (
            1.335
            - 0.0034 * m["ac"] * m["fl"]
            + 0.0316 * m["bpd"]
            + 0.0457 * m["ac"]
            + 0.1623 * m["fl"]
        ),
    ),
    "ac_fl": _Equation(
        _efw_identity(
            "ac_fl",
            ("ac_mm", "fl_mm"),
            "1.304 + 0.05281*AC + 0.1938*FL - 0.004*AC*FL",
            ("11751-5", "EFW by AC, FL, Hadlock 1985"),
        ),
        lambda m: 1.304 + 0.05281 * m["ac"] + 0.1938 * m["fl"] - 0.004 * m["ac"] * m["fl"],
    ),
}


def _inputs_cm(identity: FormulaIdentity, given: Mapping[str, object]) -> tuple[dict, dict]:
    mm = {p: require_measurement(p, given.get(p)) for p in identity.inputs}
    cm = {p.removesuffix("_mm"): v / 10.0 for p, v in mm.items()}
    return mm, cm


def ga_hadlock1984(key: str, **measurements_mm: object) -> GestationalAgeResult:
    """Gestational age (days) by the Hadlock 1984 equation ``key`` (see :data:`HADLOCK_GA`).

    ``measurements_mm``: ``bpd_mm``, ``hc_mm``, ``ac_mm``, ``fl_mm`` in millimetres (extra ones are
    ignored). Missing or impossible inputs raise ``ValueError`` naming the parameter; inputs or a
    result outside 14–42 weeks give a flagged result.
    Example: ``ga_hadlock1984("hc", hc_mm=175).weeks`` ≈ 20.02.
    """
    try:
        eq = HADLOCK_GA[key]
    except KeyError:
        raise ValueError(
            f"unknown Hadlock 1984 GA equation {key!r}; one of {sorted(HADLOCK_GA)}"
        ) from None
    mm, cm = _inputs_cm(eq.identity, measurements_mm)
    weeks = eq.compute(cm)
    days = weeks * 7.0
    flags: tuple[Flag, ...] = check_validity(eq.identity, {**mm, "ga_days": days})
    return GestationalAgeResult(formula=eq.identity, inputs=mm, flags=flags, value=days)


def efw_hadlock1985(key: str, **measurements_mm: object) -> FetalWeightResult:
    """Estimated fetal weight (g) by the Hadlock 1985 equation ``key`` (see :data:`HADLOCK_EFW`).

    Example (anchors 4(b) check): ``efw_hadlock1985("bpd_hc_ac_fl", bpd_mm=48, hc_mm=175,
    ac_mm=150, fl_mm=33).value`` ≈ 342 g.
    """
    try:
        eq = HADLOCK_EFW[key]
    except KeyError:
        raise ValueError(
            f"unknown Hadlock 1985 EFW equation {key!r}; one of {sorted(HADLOCK_EFW)}"
        ) from None
    mm, cm = _inputs_cm(eq.identity, measurements_mm)
    grams = math.pow(10.0, eq.compute(cm))
    flags = check_validity(eq.identity, mm)
    return FetalWeightResult(formula=eq.identity, inputs=mm, flags=flags, value=grams)
