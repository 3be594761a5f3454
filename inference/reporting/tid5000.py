"""DICOM SR TID 5000 "OB-GYN Ultrasound Procedure Report", from highdicom's generic content items.

highdicom has no TID 5000 class, so the tree is assembled here (PS3.16 OB-GYN templates; rows as
in shared/reference/anchors.md §4(a)):

    CONTAINER (125000, DCM, "OB-GYN Ultrasound Procedure Report")       TID 5000
      HAS OBS CONTEXT  person observer (signer), device observer (this software)   TID 1001
      CONTAINS CONTAINER (121111, DCM, "Summary")                        TID 5002
        CONTAINS CONTAINER (125008, DCM, "Fetus Summary")                TID 5003
          CONTAINS NUM (18185-9, LN, "Gestational Age") d                 the GA the report uses
            INFERRED FROM CODE (121420, DCM, "Equation") = its equation code
          CONTAINS NUM (11727-5, LN, "Estimated Weight") g
            INFERRED FROM CODE (121420, DCM, "Equation") = CID 12014 code
          CONTAINS NUM (11767-1, LN, "EFW percentile rank") %   (only when the chart's EFW is this one)
            INFERRED FROM CODE (121424, DCM, "Table of Values") = the chart
      CONTAINS CONTAINER (125002, DCM, "Fetal Biometry")                  TID 5005
        CONTAINS CONTAINER (125005, DCM, "Biometry Group")                TID 5008, one per kind
          CONTAINS NUM (LOINC biometry code) mm                           TID 300
            HAS CONCEPT MOD CODE (370129005, SCT, "Measurement Method") = caliper convention
            INFERRED FROM SCOORD ELLIPSE (4 points) | POLYLINE (2 points)  TID 320
              SELECTED FROM IMAGE (source SOP instance, frame number for multi-frame)
          CONTAINS NUM (18185-9, LN, "Gestational Age") d                 single-parameter GA
            INFERRED FROM CODE (121420, DCM, "Equation") = CID 12013 code
          CONTAINS NUM (125012, DCM, "Growth Percentile Rank") %
            INFERRED FROM CODE (121424, DCM, "Table of Values") = the growth chart
          CONTAINS NUM (125013, DCM, "Growth Z-score") {z}

Every measurement in a group is of one type (PS3.17 I.6). dsrdump and dciodvfy do not check
templates; tests/inference/reporting checks this tree.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset

from inference.reporting import codes as c
from inference.reporting.common import (
    MANUFACTURER,
    coordinates,
    evidence,
    finish,
    observation_context,
    previous_versions,
)
from inference.reporting.content import KINDS, Derived, Measurement, ReportContent

Z_SCORE_UNIT = CodedConcept("{z}", "UCUM", "z-score")

#: Single-parameter GA equations that belong in a biometry group (TID 5008 row 3).
_GROUP_GA_KEY = {
    "BPD": "ga.hadlock1984.bpd",
    "HC": "ga.hadlock1984.hc",
    "AC": "ga.hadlock1984.ac",
    "FL": "ga.hadlock1984.fl",
}


def _children(item: hd.sr.ContentItem, children: Sequence[hd.sr.ContentItem]) -> None:
    if children:
        item.ContentSequence = hd.sr.ContentSequence(list(children), is_root=False, is_sr=True)


def _container(name: object, template: str, children: Sequence[hd.sr.ContentItem]) -> Dataset:
    item = hd.sr.ContainerContentItem(
        name=c.concept(name), template_id=template, relationship_type="CONTAINS"
    )
    _children(item, children)
    return item


def _num(name: object, value: float, unit: object, children=()) -> hd.sr.NumContentItem:
    item = hd.sr.NumContentItem(
        name=c.concept(name),
        value=round(float(value), 3),
        unit=c.concept(unit),
        relationship_type="CONTAINS",
    )
    _children(item, children)
    return item


def _inferred_from(name: object, d: Derived) -> hd.sr.CodeContentItem:
    return hd.sr.CodeContentItem(
        name=c.concept(name),
        value=c.formula_concept(d.key, d.name, d.code),
        relationship_type="INFERRED FROM",
    )


def _measurement(m: Measurement) -> hd.sr.NumContentItem:
    children: list[hd.sr.ContentItem] = []
    method = c.convention_concept(m.convention)
    if method is not None:
        children.append(
            hd.sr.CodeContentItem(
                name=c.concept(c.MEASUREMENT_METHOD),
                value=method,
                relationship_type="HAS CONCEPT MOD",
            )
        )
    children.append(coordinates(m))
    return _num(c.BIOMETRY[m.kind], m.value_mm, c.MM, children)


def _group(content: ReportContent, kind: str, rows: list[Measurement]) -> Dataset:
    items: list[hd.sr.ContentItem] = [_measurement(m) for m in rows]
    ga = next(
        (d for d in content.derived if d.kind == "GA" and d.key == _GROUP_GA_KEY.get(kind)), None
    )
    if ga is not None:
        items.append(_num(c.GESTATIONAL_AGE, ga.value, c.DAYS, [_inferred_from(c.EQUATION, ga)]))
    centile = content.centile(kind)
    if centile is not None:
        items.append(
            _num(
                c.GROWTH_PERCENTILE_RANK,
                centile.value,
                c.PERCENT,
                [_inferred_from(c.TABLE_OF_VALUES, centile)],
            )
        )
        if centile.z is not None:
            items.append(
                _num(
                    c.GROWTH_Z_SCORE,
                    centile.z,
                    Z_SCORE_UNIT,
                    [_inferred_from(c.TABLE_OF_VALUES, centile)],
                )
            )
    return _container(c.BIOMETRY_GROUP, "5008", items)


def _fetus_summary(content: ReportContent) -> Dataset | None:
    items: list[hd.sr.ContentItem] = []
    ga = content.ga_used
    if ga is not None:
        items.append(_num(c.GESTATIONAL_AGE, ga.value, c.DAYS, [_inferred_from(c.EQUATION, ga)]))
    efw = content.efw_used
    if efw is not None:
        items.append(
            _num(c.ESTIMATED_WEIGHT, efw.value, c.GRAMS, [_inferred_from(c.EQUATION, efw)])
        )
        centile = content.centile("EFW")
        # Only the percentile of this very weight: a centile of another formula's EFW (e.g. the
        # INTERGROWTH-21st EFW beside a Hadlock EFW) would be misread as this one's.
        same = (
            centile is not None
            and centile.measured_value is not None
            and (abs(centile.measured_value - efw.value) < 0.5)
        )
        if centile is not None and same:
            items.append(
                _num(
                    c.EFW_PERCENTILE,
                    centile.value,
                    c.PERCENT,
                    [_inferred_from(c.TABLE_OF_VALUES, centile)],
                )
            )
    if not items:
        return None
    return _container(c.SUMMARY, "5002", [_container(c.FETUS_SUMMARY, "5003", items)])


def uses_private_codes(content: ReportContent) -> bool:
    return any(d.code is None for d in content.derived) or any(
        c.convention_concept(m.convention) is not None for m in content.measurements
    )


def content_tree(content: ReportContent) -> hd.sr.ContainerContentItem:
    """The TID 5000 root container with its whole tree (no document attributes)."""
    root = hd.sr.ContainerContentItem(name=c.concept(c.OBGYN_REPORT), template_id="5000")
    items: list[hd.sr.ContentItem] = list(observation_context(content))
    summary = _fetus_summary(content)
    if summary is not None:
        items.append(summary)
    groups = []
    for kind in KINDS:
        rows = [m for m in content.measurements if m.kind == kind]
        if rows:
            groups.append(_group(content, kind, rows))
    if groups:
        items.append(_container(c.FETAL_BIOMETRY, "5005", groups))
    _children(root, items)
    return root


def build_tid5000(
    content: ReportContent,
    *,
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int = 900,
    instance_number: int = 1,
    previous: Sequence[Dataset] = (),
) -> Dataset:
    """The signed exam as a Comprehensive SR holding a TID 5000 tree.

    ``previous``: earlier versions of this report (amendments) listed as predecessor documents.
    Completion/verification flags are set: the document is written only for a signed exam.
    """
    if not content.measurements:
        raise ValueError("a TID 5000 report needs at least one measurement in mm")
    ds = hd.sr.ComprehensiveSR(
        evidence=evidence(content),
        content=content_tree(content),
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=True,
        is_verified=True,
        verifying_observer_name=content.signer_name,
        verifying_organization=MANUFACTURER,
        previous_versions=previous_versions(previous),
    )
    return finish(
        ds,
        content,
        description=f"OB-GYN US report (TID 5000) v{content.version}",
        uses_private=uses_private_codes(content),
    )
