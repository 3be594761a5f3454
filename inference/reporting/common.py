"""Pieces shared by the SR builders: observation context, measurement SCOORDs, document tweaks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.valuerep import DT

from inference.reporting import codes as c
from inference.reporting import scoord
from inference.reporting.content import Measurement, ReportContent

MANUFACTURER = "sonoreview"


def observation_context(content: ReportContent) -> hd.sr.ObservationContext:
    """TID 1001: the signing physician (person observer) and this software (device observer)."""
    person = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name=content.signer_name, login_name=content.signer_login or None
        ),
    )
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=content.device_uid,
            name=content.device_name,
            manufacturer_name=MANUFACTURER,
            model_name=f"{content.device_name} {content.software_version}"[:64],
        ),
    )
    return hd.sr.ObservationContext(observer_person_context=person, observer_device_context=device)


def coordinates(m: Measurement) -> hd.sr.CoordinatesForMeasurement:
    """TID 320 SCOORD (INFERRED FROM) with its SELECTED FROM image (frame for multi-frame)."""
    graphic_type, points = scoord.graphic(m.geometry_px)
    return hd.sr.CoordinatesForMeasurement(
        graphic_type=graphic_type,
        graphic_data=points,
        source_image=hd.sr.SourceImageForRegion(
            referenced_sop_class_uid=m.source.sop_class_uid,
            referenced_sop_instance_uid=m.source.sop_instance_uid,
            referenced_frame_numbers=m.source.referenced_frames,
        ),
    )


def evidence(content: ReportContent) -> list[Dataset]:
    """One header per referenced source instance (highdicom builds the evidence sequence)."""
    seen: dict[str, Dataset] = {}
    for m in content.measurements:
        seen.setdefault(m.source.sop_instance_uid, m.source.header)
    if not seen:
        seen[str(content.header.SOPInstanceUID)] = content.header
    return list(seen.values())


def finish(ds: Dataset, content: ReportContent, *, description: str, uses_private: bool) -> Dataset:
    """Signer's time as content/verification time, series description, private scheme."""
    when = content.signed_at.astimezone(dt.UTC) if content.signed_at.tzinfo else content.signed_at
    ds.ContentDate = when.strftime("%Y%m%d")
    ds.ContentTime = when.strftime("%H%M%S")
    ds.SeriesDescription = description[:64]
    if "VerifyingObserverSequence" in ds:
        for item in ds.VerifyingObserverSequence:
            item.VerificationDateTime = DT(when.strftime("%Y%m%d%H%M%S"))
    if uses_private:
        ds.CodingSchemeIdentificationSequence = [c.coding_scheme_identification()]
    return ds


def previous_versions(previous: Sequence[Dataset]) -> list[Dataset] | None:
    return list(previous) or None
