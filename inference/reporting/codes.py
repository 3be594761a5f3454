"""Coded concepts the reports use, read from pydicom's DICOM code dictionary (PS3.16) where the
concept exists there, so a typo cannot produce a wrong code; the project's private codes (scheme
``99SNRVW``) only where DICOM has none: INTERGROWTH-21st equations (absent from CID 12013/12014/
12015 in the versions read, see shared/reference/anchors.md) and multi-parameter Hadlock GA
equations, plus the caliper convention.
"""

from __future__ import annotations

import hashlib

from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from inference.reporting.content import Coded

PRIVATE_SCHEME = "99SNRVW"
PRIVATE_SCHEME_NAME = "sonoreview local codes"
PRIVATE_SCHEME_ORGANIZATION = "sonoreview project"

# --- Document structure (DCM) -------------------------------------------------------------------
OBGYN_REPORT = codes.DCM.OBGYNUltrasoundProcedureReport  # 125000, TID 5000 title
FETAL_BIOMETRY = codes.DCM.FetalBiometry  # 125002, TID 5005
BIOMETRY_GROUP = codes.DCM.BiometryGroup  # 125005, TID 5008
SUMMARY = codes.DCM.Summary  # 121111, TID 5002
FETUS_SUMMARY = codes.DCM.FetusSummary  # 125008, TID 5003
EQUATION = codes.DCM.Equation  # 121420 (CID 228)
TABLE_OF_VALUES = codes.DCM.TableOfValues  # 121424 (CID 228)
GROWTH_PERCENTILE_RANK = codes.DCM.GrowthPercentileRank  # 125012 (CID 12017)
GROWTH_Z_SCORE = codes.DCM.GrowthZScore  # 125013 (CID 12017)
SOURCE_OF_MEASUREMENT = codes.DCM.SourceOfMeasurement  # 121112
IMAGING_MEASUREMENT_REPORT = codes.DCM.ImagingMeasurementReport  # 126000
PROCEDURE_OB_US = Coded("DCM", "125000", "OB-GYN Ultrasound Procedure Report")
MEASUREMENT_METHOD = codes.SCT.MeasurementMethod  # 370129005

# --- Biometry (LOINC, CID 12005 / 12019) ---------------------------------------------------------
BIOMETRY: dict[str, object] = {
    "BPD": codes.LN.BiparietalDiameter,  # 11820-8
    "HC": codes.LN.HeadCircumference,  # 11984-2
    "AC": codes.LN.AbdominalCircumference,  # 11979-2
    "FL": codes.LN.FemurLength,  # 11963-6
    "OFD": codes.LN.OccipitalFrontalDiameter,  # 11851-3
}
GESTATIONAL_AGE = codes.LN.GestationalAge  # 18185-9
COMPOSITE_US_AGE = codes.LN.CompositeUltrasoundAge  # 11888-5
ESTIMATED_WEIGHT = codes.LN.EstimatedWeight  # 11727-5
EFW_PERCENTILE = codes.LN.EFWPercentileRank  # 11767-1

# --- Units (UCUM) ---------------------------------------------------------------------------------
MM = codes.UCUM.Millimeter
DAYS = codes.UCUM.Day
PERCENT = codes.UCUM.Percent
GRAMS = CodedConcept("g", "UCUM", "gram")

# Caliper conventions as the analysis and review apps write them → private code.
CONVENTIONS: dict[str, tuple[str, str]] = {
    "outer-to-outer": ("CAL-OO", "Calipers outer-to-outer"),
    "outer-to-inner": ("CAL-OI", "Calipers outer-to-inner"),
    "outer skull border ellipse": ("CAL-ELL-OUT", "Ellipse on the outer border"),
}

# Stable short private code values (SH, ≤ 16 characters) for formula keys without a DICOM code.
_PRIVATE_FORMULA_CODES: dict[str, str] = {
    "ga.hadlock1984.bpd_hc_ac_fl": "GA-H84-BHAF",
    "ga.hadlock1984.hc_ac_fl": "GA-H84-HAF",
    "ga.hadlock1984.bpd_ac_fl": "GA-H84-BAF",
    "ga.hadlock1984.ac_fl": "GA-H84-AF",
    "ga.hadlock1984.hc_ac": "GA-H84-HA",
    "ga.hadlock1984.bpd_fl": "GA-H84-BF",
    "ga.intergrowth21.hc": "GA-IG21-HC",
    "ga.intergrowth21.hc_fl": "GA-IG21-HCFL",
    "efw.intergrowth21.hc_ac": "EFW-IG21-HCAC",
    "centile.intergrowth21.hc": "CT-IG21-HC",
    "centile.intergrowth21.bpd": "CT-IG21-BPD",
    "centile.intergrowth21.ac": "CT-IG21-AC",
    "centile.intergrowth21.fl": "CT-IG21-FL",
    "centile.intergrowth21.ofd": "CT-IG21-OFD",
    "centile.intergrowth21.efw": "CT-IG21-EFW",
}


def concept(c: object) -> CodedConcept:
    """A highdicom CodedConcept from a pydicom Code, a :class:`Coded` or a CodedConcept."""
    if isinstance(c, CodedConcept):
        return c
    if isinstance(c, Coded):
        return CodedConcept(c.value, c.scheme, c.meaning)
    return CodedConcept(c.value, c.scheme_designator, c.meaning)  # type: ignore[attr-defined]


def private_code_value(key: str) -> str:
    """The private code value of a formula key: a fixed table, else a stable hash (≤ 16 chars)."""
    if key in _PRIVATE_FORMULA_CODES:
        return _PRIVATE_FORMULA_CODES[key]
    return "F-" + hashlib.sha1(key.encode()).hexdigest()[:12].upper()


def formula_concept(key: str, name: str, code: Coded | None) -> CodedConcept:
    """The equation/table code: the DICOM one (CID 12013/12014/12015) or the private one."""
    if code is not None:
        return concept(code)
    return CodedConcept(private_code_value(key), PRIVATE_SCHEME, name[:64])


def convention_concept(convention: str) -> CodedConcept | None:
    found = CONVENTIONS.get(convention.strip().lower())
    if found is None:
        return None
    return CodedConcept(found[0], PRIVATE_SCHEME, found[1])


def coding_scheme_identification() -> Dataset:
    """The Coding Scheme Identification item declaring the private scheme (0008,0110)."""
    item = Dataset()
    item.CodingSchemeDesignator = PRIVATE_SCHEME
    item.CodingSchemeName = PRIVATE_SCHEME_NAME
    item.CodingSchemeResponsibleOrganization = PRIVATE_SCHEME_ORGANIZATION
    return item
