"""DICOM SR TID 1500 Measurement Report of the same measurements (what OHIF and most viewers read).

One measurement group per measurement: an ellipse (HC, AC) is a planar ROI (TID 1410) whose
region is the ELLIPSE on the source frame; a length (BPD, OFD, FL) is a TID 1501 group whose
measurement is INFERRED FROM its open POLYLINE (TID 300/320). AI values carry the algorithm
identification (TID 4019); the caliper convention is the measurement method.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from pydicom.dataset import Dataset

from inference.reporting import codes as c
from inference.reporting import scoord
from inference.reporting.common import (
    MANUFACTURER,
    coordinates,
    evidence,
    finish,
    observation_context,
    previous_versions,
)
from inference.reporting.content import KINDS, Measurement, ReportContent

ORIGIN_TEXT = {"ai": "AI, accepted", "edited": "AI, edited by physician", "physician": "physician"}


def _algorithm(m: Measurement) -> hd.sr.AlgorithmIdentification | None:
    if m.origin != "ai" or m.algorithm is None:
        return None
    name, version = m.algorithm
    return hd.sr.AlgorithmIdentification(name=name[:64] or "model", version=version[:64] or "0")


def _group(m: Measurement) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    tracking = hd.sr.TrackingIdentifier(
        uid=m.tracking_uid, identifier=f"{m.kind} ({ORIGIN_TEXT.get(m.origin, m.origin)})"[:64]
    )
    method = c.convention_concept(m.convention)
    algorithm = _algorithm(m)
    if m.shape == "ellipse":
        _, points = scoord.graphic(m.geometry_px)
        region = hd.sr.ImageRegion(
            graphic_type="ELLIPSE",
            graphic_data=points,
            source_image=hd.sr.SourceImageForRegion(
                referenced_sop_class_uid=m.source.sop_class_uid,
                referenced_sop_instance_uid=m.source.sop_instance_uid,
                referenced_frame_numbers=m.source.referenced_frames,
            ),
        )
        measurement = hd.sr.Measurement(
            name=c.concept(c.BIOMETRY[m.kind]),
            value=round(float(m.value_mm), 3),
            unit=c.concept(c.MM),
            method=method,
            algorithm_id=algorithm,
        )
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking,
            referenced_region=region,
            measurements=[measurement],
            method=method,
            algorithm_id=algorithm,
        )
    measurement = hd.sr.Measurement(
        name=c.concept(c.BIOMETRY[m.kind]),
        value=round(float(m.value_mm), 3),
        unit=c.concept(c.MM),
        method=method,
        algorithm_id=algorithm,
        referenced_coordinates=[coordinates(m)],
    )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking,
        measurements=[measurement],
        method=method,
        algorithm_id=algorithm,
    )


def build_tid1500(
    content: ReportContent,
    *,
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int = 901,
    instance_number: int = 1,
    previous: Sequence[Dataset] = (),
) -> Dataset:
    """The measurements as a Comprehensive 3D SR holding a TID 1500 Measurement Report."""
    rows = sorted(content.measurements, key=lambda m: (KINDS.index(m.kind), m.tracking_uid))
    if not rows:
        raise ValueError("a TID 1500 report needs at least one measurement in mm")
    report = hd.sr.MeasurementReport(
        observation_context=observation_context(content),
        procedure_reported=c.concept(c.PROCEDURE_OB_US),
        imaging_measurements=[_group(m) for m in rows],
    )
    ds = hd.sr.Comprehensive3DSR(
        evidence=evidence(content),
        content=report[0],
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
    uses_private = any(c.convention_concept(m.convention) is not None for m in rows)
    return finish(
        ds,
        content,
        description=f"Biometry measurements (TID 1500) v{content.version}",
        uses_private=uses_private,
    )
