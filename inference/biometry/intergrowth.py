"""INTERGROWTH-21st fetal growth standards: size centiles, EFW, EFW-for-GA centile, GA estimation.

Equations exactly as in ``shared/reference/anchors.md`` section 4(c), [V-impl]: as written in the R
package ``lshtm-gigs/gigs`` (R/ig_fet.R, R/ig_fet_estimation.R), which cites the papers below; the
papers' own tables were not read here.

* Size standards (HC, BPD, AC, FL, OFD; mean and SD by GA in exact weeks, outputs in mm):
  Papageorghiou AT, Ohuma EO, Altman DG, et al. International standards for fetal growth based on
  serial ultrasound measurements: the Fetal Growth Longitudinal Study of the INTERGROWTH-21st Project.
  Lancet 2014;384:869-79. Valid 14+0 to 40+0 weeks (gigs: gest_days 98-280) [V-impl].
* EFW equation and EFW-for-GA standard (LMS on ln EFW; 22+0 to 40+0 weeks, gest_days 154-280
  [V-impl]): Stirnemann J, Villar J, Salomon LJ, et al. International estimated fetal weight standards
  of the INTERGROWTH-21st Project. Ultrasound Obstet Gynecol 2017;49:478-86.
* GA estimation from HC, and from HC + FL (mm → days): Papageorghiou AT, Kemp B, Stones W, et al.
  Ultrasound-based gestational age estimation in late pregnancy. Ultrasound Obstet Gynecol
  2016;48:719-26. gigs documents these for scans at 98-181 days [V-impl, package documentation].

No INTERGROWTH-21st code appears in the CID 12013 (2006) or CID 12014 (2003) value sets read
(anchors 4(a)); ``dicom_code`` is ``None`` for all of them until a newer PS3.16 is checked [M].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from inference.biometry.identity import (
    FetalWeightResult,
    Flag,
    FormulaIdentity,
    GestationalAgeResult,
    SizeCentileResult,
    ValidityRange,
    check_validity,
)
from inference.biometry.inputs import require_ga_days, require_measurement

__all__ = [
    "IG_EFW",
    "IG_EFW_FOR_GA",
    "IG_GA",
    "IG_SIZE",
    "efw_centile_intergrowth",
    "efw_intergrowth",
    "efw_lms",
    "ga_intergrowth",
    "size_centile_intergrowth",
    "size_mean_sd",
]

IG_FGLS_2014 = (
    "Papageorghiou AT, Ohuma EO, Altman DG, et al. International standards for fetal growth based "
    "on serial ultrasound measurements: the Fetal Growth Longitudinal Study of the INTERGROWTH-21st "
    "Project. Lancet 2014;384:869-79"
)
IG_EFW_2017 = (
    "Stirnemann J, Villar J, Salomon LJ, et al. International estimated fetal weight standards of "
    "the INTERGROWTH-21st Project. Ultrasound Obstet Gynecol 2017;49:478-86"
)
IG_GA_2016 = (
    "Papageorghiou AT, Kemp B, Stones W, et al. Ultrasound-based gestational age estimation in late "
    "pregnancy. Ultrasound Obstet Gynecol 2016;48:719-26"
)
_PROVENANCE = "[V-impl] as written in lshtm-gigs/gigs (anchors.md 4(c)); paper tables not read"
_NO_CODE = (
    "no INTERGROWTH-21st code in the CID 12013/12014/12015 value sets read (2003-2006 versions); "
    "newer PS3.16 unchecked [M]"
)

_SIZE_GA = ValidityRange(
    parameter="ga_days",
    low=98.0,
    high=280.0,
    unit="d",
    basis="INTERGROWTH-21st fetal size standards span 14+0 to 40+0 weeks [V-impl]",
)
_EFW_GA = ValidityRange(
    parameter="ga_days",
    low=154.0,
    high=280.0,
    unit="d",
    basis="INTERGROWTH-21st EFW-for-GA standard spans 22+0 to 40+0 weeks [V-impl]",
)


# --- size standards: μ(GA), σ(GA) with GA in exact weeks, mm ---------------------------------------
def _hc(ga: float) -> tuple[float, float]:
    lg = math.log(ga)
    mu = -28.2849 + 1.69267 * ga**2 - 0.397485 * ga**2 * lg
    sd = 1.98735 + 0.0136772 * ga**3 - 0.00726264 * ga**3 * lg + 0.000976253 * ga**3 * lg**2
    return mu, sd


def _bpd(ga: float) -> tuple[float, float]:
    lg = math.log(ga)
    mu = 5.60878 + 0.158369 * ga**2 - 0.00256379 * ga**3
    sd = math.exp(
        0.101242 + 0.00150557 * ga**3 - 0.000771535 * ga**3 * lg + 0.0000999638 * ga**3 * lg**2
    )
    return mu, sd


def _ac(ga: float) -> tuple[float, float]:
    lg = math.log(ga)
    mu = -81.3243 + 11.6772 * ga - 0.000561865 * ga**3
    sd = -4.36302 + 0.121445 * ga**2 - 0.0130256 * ga**3 + 0.00282143 * ga**3 * lg
    return mu, sd


def _fl(ga: float) -> tuple[float, float]:
    mu = -39.9616 + 4.32298 * ga - 0.0380156 * ga**2
    sd = math.exp(0.605843 - 42.0014 * ga**-2 + 0.00000917972 * ga**3)
    return mu, sd


def _ofd(ga: float) -> tuple[float, float]:
    lg = math.log(ga)
    mu = -12.4097 + 0.626342 * ga**2 - 0.148075 * ga**2 * lg
    sd = math.exp(
        -0.880034 + 0.0631165 * ga**2 - 0.0317136 * ga**2 * lg + 0.00408302 * ga**2 * lg**2
    )
    return mu, sd


@dataclass(frozen=True)
class _SizeStandard:
    identity: FormulaIdentity
    measurement: str
    mean_sd: Callable[[float], tuple[float, float]]


def _size_identity(short: str, long: str, mu: str, sd: str) -> FormulaIdentity:
    return FormulaIdentity(
        key=f"centile.intergrowth21.{short}",
        name=f"{long}-for-gestational-age, INTERGROWTH-21st fetal growth standard",
        reference=IG_FGLS_2014,
        inputs=(f"{short}_mm", "ga_days"),
        output="z, centile",
        equation=f"mean (mm) = {mu}; SD (mm) = {sd}; z = (y - mean)/SD; centile = Phi(z) "
        "[GA in exact weeks, ln natural]",
        validity=(_SIZE_GA,),
        dicom_code=None,
        code_note=_NO_CODE,
        provenance=_PROVENANCE,
    )


IG_SIZE: dict[str, _SizeStandard] = {
    "hc": _SizeStandard(
        _size_identity(
            "hc",
            "Head circumference",
            "-28.2849 + 1.69267*GA^2 - 0.397485*GA^2*ln(GA)",
            "1.98735 + 0.0136772*GA^3 - 0.00726264*GA^3*ln(GA) + 0.000976253*GA^3*ln(GA)^2",
        ),
        "hc_mm",
        _hc,
    ),
    "bpd": _SizeStandard(
        _size_identity(
            "bpd",
            "Biparietal diameter",
            "5.60878 + 0.158369*GA^2 - 0.00256379*GA^3",
            "exp(0.101242 + 0.00150557*GA^3 - 0.000771535*GA^3*ln(GA) "
            "+ 0.0000999638*GA^3*ln(GA)^2)",
        ),
        "bpd_mm",
        _bpd,
    ),
    "ac": _SizeStandard(
        _size_identity(
            "ac",
            "Abdominal circumference",
            "-81.3243 + 11.6772*GA - 0.000561865*GA^3",
            "-4.36302 + 0.121445*GA^2 - 0.0130256*GA^3 + 0.00282143*GA^3*ln(GA)",
        ),
        "ac_mm",
        _ac,
    ),
    "fl": _SizeStandard(
        _size_identity(
            "fl",
            "Femur length",
            "-39.9616 + 4.32298*GA - 0.0380156*GA^2",
            "exp(0.605843 - 42.0014*GA^-2 + 0.00000917972*GA^3)",
        ),
        "fl_mm",
        _fl,
    ),
    "ofd": _SizeStandard(
        _size_identity(
            "ofd",
            "Occipito-frontal diameter",
            "-12.4097 + 0.626342*GA^2 - 0.148075*GA^2*ln(GA)",
            "exp(-0.880034 + 0.0631165*GA^2 - 0.0317136*GA^2*ln(GA) + 0.00408302*GA^2*ln(GA)^2)",
        ),
        "ofd_mm",
        _ofd,
    ),
}

#: |z| above which a centile result is flagged for a check of the measurement and of the GA.
EXTREME_Z = 4.0


def _phi_percent(z: float) -> float:
    return 50.0 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _extreme_z_flag(z: float, measurement: str) -> tuple[Flag, ...]:
    if abs(z) <= EXTREME_Z:
        return ()
    return (
        Flag(
            code="extreme_z_score",
            message=(
                f"{measurement} lies {z:+.1f} SD from the chart's median: check the measurement, "
                "its unit and the gestational age before using this centile"
            ),
            parameter="z",
            value=z,
            low=-EXTREME_Z,
            high=EXTREME_Z,
            unit="SD",
        ),
    )


def size_mean_sd(measurement: str, ga_days: float) -> tuple[float, float]:
    """INTERGROWTH-21st median and SD (mm) of ``measurement`` (``"hc"``, ``"bpd"``, ``"ac"``,
    ``"fl"``, ``"ofd"``) at ``ga_days`` days. Example: ``size_mean_sd("hc", 140)`` ≈ (172.5, 7.44).
    """
    try:
        standard = IG_SIZE[measurement]
    except KeyError:
        raise ValueError(
            f"unknown INTERGROWTH-21st size standard {measurement!r}; one of {sorted(IG_SIZE)}"
        ) from None
    return standard.mean_sd(require_ga_days(ga_days) / 7.0)


def size_centile_intergrowth(
    measurement: str, value_mm: object, ga_days: object
) -> SizeCentileResult:
    """z-score and centile of a measurement in mm (``measurement``: hc, bpd, ac, fl, ofd) at a GA in
    days. GA outside 14+0–40+0 weeks gives a flagged (extrapolated) result; |z| > 4 is flagged too.
    """
    try:
        standard = IG_SIZE[measurement]
    except KeyError:
        raise ValueError(
            f"unknown INTERGROWTH-21st size standard {measurement!r}; one of {sorted(IG_SIZE)}"
        ) from None
    y = require_measurement(standard.measurement, value_mm)
    days = require_ga_days(ga_days)
    mu, sd = standard.mean_sd(days / 7.0)
    if sd <= 0:  # the polynomial SDs turn negative far outside the chart's range
        raise ValueError(
            f"ga_days: {days:g} d is too far outside the INTERGROWTH-21st chart (14-40 weeks) "
            "to compute a standard deviation"
        )
    z = (y - mu) / sd
    flags = check_validity(standard.identity, {"ga_days": days}) + _extreme_z_flag(
        z, standard.measurement
    )
    return SizeCentileResult(
        formula=standard.identity,
        inputs={standard.measurement: y, "ga_days": days},
        flags=flags,
        measurement=standard.measurement,
        value=y,
        unit="mm",
        ga_days=days,
        z=z,
        centile=_phi_percent(z),
        expected_median=mu,
        expected_sd=sd,
    )


# --- EFW (Stirnemann 2017) ------------------------------------------------------------------------
def _size_span(measurement: str, lo_days: float, hi_days: float, k: float) -> tuple[float, float]:
    mu_lo, sd_lo = IG_SIZE[measurement].mean_sd(lo_days / 7.0)
    mu_hi, sd_hi = IG_SIZE[measurement].mean_sd(hi_days / 7.0)
    return mu_lo - k * sd_lo, mu_hi + k * sd_hi


def _efw_input_range(measurement: str) -> ValidityRange:
    low, high = _size_span(measurement, 154.0, 280.0, 3.0)
    return ValidityRange(
        parameter=f"{measurement}_mm",
        low=low,
        high=high,
        unit="mm",
        basis=(
            "project choice: INTERGROWTH-21st size-standard span (median -3 SD at 22+0 wk to "
            "+3 SD at 40+0 wk); the equation's derivation range is unverified [M]"
        ),
    )


IG_EFW = FormulaIdentity(
    key="efw.intergrowth21.hc_ac",
    name="Estimated fetal weight from HC+AC, INTERGROWTH-21st (Stirnemann 2017)",
    reference=IG_EFW_2017,
    inputs=("hc_mm", "ac_mm"),
    output="efw_g",
    equation=(
        "ln EFW (g) = 5.084820 - 54.06633*(AC/100)^3 - 95.80076*(AC/100)^3*ln(AC/100) "
        "+ 3.136370*(HC/100)   [AC, HC in cm]"
    ),
    validity=(_efw_input_range("hc"), _efw_input_range("ac")),
    dicom_code=None,
    code_note=_NO_CODE,
    provenance=_PROVENANCE + "; test vector HC 29 cm, AC 26 cm -> 1,499 g (gigs)",
)


def efw_intergrowth(hc_mm: object, ac_mm: object) -> FetalWeightResult:
    """INTERGROWTH-21st EFW (g) from HC and AC in mm. ``efw_intergrowth(290, 260).value`` ≈ 1498.6."""
    hc = require_measurement("hc_mm", hc_mm)
    ac = require_measurement("ac_mm", ac_mm)
    ac_h = ac / 10.0 / 100.0  # the equation takes cm and divides by 100
    hc_h = hc / 10.0 / 100.0
    grams = math.exp(
        5.084820 - 54.06633 * ac_h**3 - 95.80076 * ac_h**3 * math.log(ac_h) + 3.136370 * hc_h
    )
    flags = check_validity(IG_EFW, {"hc_mm": hc, "ac_mm": ac})
    return FetalWeightResult(
        formula=IG_EFW, inputs={"hc_mm": hc, "ac_mm": ac}, flags=flags, value=grams
    )


IG_EFW_FOR_GA = FormulaIdentity(
    key="centile.intergrowth21.efw",
    name="Estimated-fetal-weight-for-gestational-age, INTERGROWTH-21st standard (Stirnemann 2017)",
    reference=IG_EFW_2017,
    inputs=("efw_g", "ga_days"),
    output="z, centile",
    equation=(
        "LMS on ln EFW: L = -4.257629 - 2162.234*GA^-2 + 0.0002301829*GA^3; "
        "M = 4.956737 + 0.0005019687*GA^3 - 0.0001227065*GA^3*ln(GA); "
        "S = 1e-4*(-6.997171 + 0.057559*GA^3 - 0.01493946*GA^3*ln(GA)); "
        "z = ((ln EFW / M)^L - 1)/(S*L)   [GA in exact weeks]"
    ),
    validity=(_EFW_GA,),
    dicom_code=None,
    code_note=_NO_CODE,
    provenance=_PROVENANCE,
)


def efw_lms(ga_days: float) -> tuple[float, float, float]:
    """(L, M, S) of the INTERGROWTH-21st EFW-for-GA standard on the ln(EFW in g) scale."""
    ga = require_ga_days(ga_days) / 7.0
    lg = math.log(ga)
    lam = -4.257629 - 2162.234 * ga**-2 + 0.0002301829 * ga**3
    mu = 4.956737 + 0.0005019687 * ga**3 - 0.0001227065 * ga**3 * lg
    sigma = 1e-4 * (-6.997171 + 0.057559 * ga**3 - 0.01493946 * ga**3 * lg)
    return lam, mu, sigma


def efw_centile_intergrowth(efw_g: object, ga_days: object) -> SizeCentileResult:
    """z-score and centile of an EFW (g) on the INTERGROWTH-21st EFW-for-GA standard.

    Use it with the INTERGROWTH-21st EFW (:func:`efw_intergrowth`), the equation the standard was
    built with; GA outside 22+0–40+0 weeks gives a flagged result.
    """
    efw = require_measurement("efw_g", efw_g)
    days = require_ga_days(ga_days)
    lam, mu, sigma = efw_lms(days)
    if sigma <= 0:
        raise ValueError(
            f"ga_days: {days:g} d is too far outside the INTERGROWTH-21st EFW chart (22-40 weeks) "
            "to compute a centile"
        )
    ln_efw = math.log(efw)
    if ln_efw <= 0:
        raise ValueError(f"efw_g: {efw:g} g is below 1 g; not an estimated fetal weight")
    if abs(lam) < 1e-8:
        z = math.log(ln_efw / mu) / sigma
    else:
        z = ((ln_efw / mu) ** lam - 1.0) / (sigma * lam)
    flags = check_validity(IG_EFW_FOR_GA, {"ga_days": days}) + _extreme_z_flag(z, "efw_g")
    return SizeCentileResult(
        formula=IG_EFW_FOR_GA,
        inputs={"efw_g": efw, "ga_days": days},
        flags=flags,
        measurement="efw_g",
        value=efw,
        unit="g",
        ga_days=days,
        z=z,
        centile=_phi_percent(z),
        expected_median=math.exp(mu),
        expected_sd=None,
    )


# --- GA estimation (Papageorghiou 2016) -----------------------------------------------------------
_GA_EST_RANGE = ValidityRange(
    parameter="ga_days",
    low=98.0,
    high=181.0,
    unit="d",
    basis="scans at 98-181 days (14+0 to 25+6 weeks) as documented by gigs [V-impl]",
)


def _ga_from_hc(hc: float) -> float:
    return math.exp(0.05970 * math.log(hc) ** 2 + 0.000000006409 * hc**3 + 3.3258)


def _ga_from_hc_fl(hc: float, fl: float) -> float:
    return math.exp(0.03243 * math.log(hc) ** 2 + 0.001644 * fl * math.log(hc) + 3.813)


def _hc_for_ga(days: float) -> float:
    lo, hi = 1.0, 500.0  # _ga_from_hc is increasing on this span
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _ga_from_hc(mid) < days:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class _GaEquation:
    identity: FormulaIdentity
    compute: Callable[..., float]


IG_GA: dict[str, _GaEquation] = {
    "hc": _GaEquation(
        FormulaIdentity(
            key="ga.intergrowth21.hc",
            name="Gestational age from HC, INTERGROWTH-21st (Papageorghiou 2016)",
            reference=IG_GA_2016,
            inputs=("hc_mm",),
            output="ga_days",
            equation="GA (days) = exp(0.05970*ln(HC)^2 + 0.000000006409*HC^3 + 3.3258)   [HC in mm]",
            validity=(
                ValidityRange(
                    parameter="hc_mm",
                    low=_hc_for_ga(98.0),
                    high=_hc_for_ga(181.0),
                    unit="mm",
                    basis="HC that the equation maps to 98-181 days, the documented scan window "
                    "[V-impl]",
                ),
            ),
            dicom_code=None,
            code_note=_NO_CODE,
            provenance=_PROVENANCE + "; check HC 175 mm -> 141.5 d (anchors 4(c))",
        ),
        lambda hc_mm: _ga_from_hc(hc_mm),
    ),
    "hc_fl": _GaEquation(
        FormulaIdentity(
            key="ga.intergrowth21.hc_fl",
            name="Gestational age from HC+FL, INTERGROWTH-21st (Papageorghiou 2016)",
            reference=IG_GA_2016,
            inputs=("hc_mm", "fl_mm"),
            output="ga_days",
            equation="GA (days) = exp(0.03243*ln(HC)^2 + 0.001644*FL*ln(HC) + 3.813)   "
            "[HC, FL in mm]",
            validity=(_GA_EST_RANGE,),
            dicom_code=None,
            code_note=_NO_CODE,
            provenance=_PROVENANCE,
        ),
        lambda hc_mm, fl_mm: _ga_from_hc_fl(hc_mm, fl_mm),
    ),
}


def ga_intergrowth(key: str, **measurements_mm: object) -> GestationalAgeResult:
    """Gestational age (days) by INTERGROWTH-21st: ``key`` ``"hc"`` or ``"hc_fl"``.

    Example (anchors 4(c) check): ``ga_intergrowth("hc", hc_mm=175).value`` ≈ 141.5 days.
    """
    try:
        eq = IG_GA[key]
    except KeyError:
        raise ValueError(
            f"unknown INTERGROWTH-21st GA equation {key!r}; one of {sorted(IG_GA)}"
        ) from None
    mm = {p: require_measurement(p, measurements_mm.get(p)) for p in eq.identity.inputs}
    days = eq.compute(**mm)
    flags = check_validity(eq.identity, {**mm, "ga_days": days})
    return GestationalAgeResult(formula=eq.identity, inputs=mm, flags=flags, value=days)
