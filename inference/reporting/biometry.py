"""The report's GA / EFW / centiles from the signed measurement values, with the choices named.

* GA used: the GA from dates when the caller has one; else the first ultrasound equation in
  :data:`GA_PREFERENCE` whose inputs were measured and whose result is inside its validity range
  (else the first one computed at all). INTERGROWTH-21st dating equations come first (designed for
  dating in the second trimester), Hadlock 1984 multi-parameter and single-parameter ones after.
* EFW reported: the first of :data:`EFW_PREFERENCE` computed (Hadlock 1985 four-parameter first).
* Centiles: INTERGROWTH-21st size and EFW standards at the GA used. When that GA comes from the same
  measurements the centiles are not independent of them (the calculator calls this circular); the
  report says so in its notes.
"""

from __future__ import annotations

from collections.abc import Mapping

from inference.biometry import compute_all
from inference.reporting.content import Coded, Derived

GA_PREFERENCE = (
    "ga.intergrowth21.hc_fl",
    "ga.intergrowth21.hc",
    "ga.hadlock1984.bpd_hc_ac_fl",
    "ga.hadlock1984.hc_ac_fl",
    "ga.hadlock1984.hc_ac",
    "ga.hadlock1984.hc",
    "ga.hadlock1984.bpd_ac_fl",
    "ga.hadlock1984.ac_fl",
    "ga.hadlock1984.bpd_fl",
    "ga.hadlock1984.bpd",
    "ga.hadlock1984.ac",
    "ga.hadlock1984.fl",
)
EFW_PREFERENCE = (
    "efw.hadlock1985.bpd_hc_ac_fl",
    "efw.hadlock1985.hc_ac_fl",
    "efw.hadlock1985.bpd_ac_fl",
    "efw.hadlock1985.ac_fl",
    "efw.intergrowth21.hc_ac",
)
INPUT_KIND = {"bpd_mm": "BPD", "hc_mm": "HC", "ac_mm": "AC", "fl_mm": "FL", "ofd_mm": "OFD"}
CALCULATOR_NAME = {v: k for k, v in INPUT_KIND.items()}
CIRCULAR_NOTE = (
    "Centiles are placed at the ultrasound GA of this exam (no GA from dates was given), which "
    "comes from these same measurements; they describe proportion, not growth."
)


def _code(formula: Mapping) -> Coded | None:
    code = formula.get("dicom_code")
    if not code:
        return None
    return Coded(code["scheme_designator"], code["code_value"], code["code_meaning"])


def _kinds(inputs: Mapping) -> tuple[str, ...]:
    return tuple(INPUT_KIND[k] for k in inputs if k in INPUT_KIND)


def derive(
    values_mm: Mapping[str, float], *, ga_days_by_dates: float | None = None
) -> tuple[tuple[Derived, ...], tuple[str, ...]]:
    """(every GA / EFW / centile with ``used`` marked, notes for the reader) from final values.

    ``values_mm`` maps kinds (HC, BPD, OFD, AC, FL) to mm. No side effects.
    """
    given = {CALCULATOR_NAME[k]: v for k, v in values_mm.items() if k in CALCULATOR_NAME}
    if not given:
        return (), ("No calibrated measurement: no gestational age, weight or centile.",)
    first = compute_all(given).to_dict()
    notes: list[str] = []
    ages = {g["formula"]["key"]: g for g in first["gestational_age"]}
    used_key = None
    if ga_days_by_dates is None:
        ranked = [ages[k] for k in GA_PREFERENCE if k in ages]
        clean = [g for g in ranked if not g["flags"]]
        chosen = (clean or ranked or [None])[0]
        used_key = chosen["formula"]["key"] if chosen else None
        ga_used = chosen["ga_days"] if chosen else None
        if ga_used is not None:
            notes.append(CIRCULAR_NOTE)
    else:
        ga_used = float(ga_days_by_dates)
    derived: list[Derived] = []
    if ga_days_by_dates is not None:
        derived.append(
            Derived("GA", "ga.dates", "Gestational age from dates", ga_used, "d", used=True)
        )
    for g in first["gestational_age"]:
        f = g["formula"]
        derived.append(
            Derived(
                "GA",
                f["key"],
                f["name"],
                float(g["ga_days"]),
                "d",
                _code(f),
                _kinds(g["inputs"]),
                used=f["key"] == used_key,
                flags=tuple(x["message"] for x in g["flags"]),
                reference=f["reference"],
            )
        )
    weights = {w["formula"]["key"]: w for w in first["estimated_fetal_weight"]}
    efw_key = next((k for k in EFW_PREFERENCE if k in weights), None)
    for w in first["estimated_fetal_weight"]:
        f = w["formula"]
        derived.append(
            Derived(
                "EFW",
                f["key"],
                f["name"],
                float(w["efw_g"]),
                "g",
                _code(f),
                _kinds(w["inputs"]),
                used=f["key"] == efw_key,
                flags=tuple(x["message"] for x in w["flags"]),
                reference=f["reference"],
            )
        )
    if ga_used is not None:
        with_ga = compute_all(given, ga_days=ga_used).to_dict()
        for cdict in with_ga["centiles"]:
            f = cdict["formula"]
            measurement = cdict["measurement"].split("_")[0].upper()
            derived.append(
                Derived(
                    "centile",
                    f["key"],
                    f["name"],
                    float(cdict["centile"]),
                    "%",
                    _code(f),
                    (measurement,) if measurement != "EFW" else ("HC", "AC"),
                    measurement=measurement,
                    measured_value=float(cdict["value"]),
                    z=float(cdict["z"]),
                    flags=tuple(x["message"] for x in cdict["flags"]),
                    reference=f["reference"],
                )
            )
    return tuple(derived), tuple(notes)
