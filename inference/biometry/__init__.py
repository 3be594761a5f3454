"""Fetal biometry formulas: gestational age, estimated fetal weight and size centiles.

Every result carries the :class:`~inference.biometry.identity.FormulaIdentity` of the equation or
chart behind it (name, reference, DICOM code where one exists, validity ranges) and flags for
inputs outside a formula's validity range; impossible inputs raise ``ValueError`` naming the
parameter. Public API in millimetres, days and grams.

* Hadlock 1984 GA and Hadlock 1985 EFW: :mod:`inference.biometry.hadlock`
* INTERGROWTH-21st size/EFW standards, EFW and GA equations: :mod:`inference.biometry.intergrowth`
* all at once: :func:`inference.biometry.calculator.compute_all`; command line:
  ``python -m inference.biometry --hc MM --bpd MM --ac MM --fl MM [--ofd MM] [--ga-weeks W]``
"""

from inference.biometry.calculator import BiometryReport, compute_all, parse_ga_weeks
from inference.biometry.hadlock import efw_hadlock1985, ga_hadlock1984
from inference.biometry.identity import (
    DicomCode,
    FetalWeightResult,
    Flag,
    FormulaIdentity,
    GestationalAgeResult,
    SizeCentileResult,
    ValidityRange,
)
from inference.biometry.intergrowth import (
    efw_centile_intergrowth,
    efw_intergrowth,
    ga_intergrowth,
    size_centile_intergrowth,
    size_mean_sd,
)

__all__ = [
    "BiometryReport",
    "DicomCode",
    "FetalWeightResult",
    "Flag",
    "FormulaIdentity",
    "GestationalAgeResult",
    "SizeCentileResult",
    "ValidityRange",
    "compute_all",
    "efw_centile_intergrowth",
    "efw_hadlock1985",
    "efw_intergrowth",
    "ga_hadlock1984",
    "ga_intergrowth",
    "parse_ga_weeks",
    "size_centile_intergrowth",
    "size_mean_sd",
]
