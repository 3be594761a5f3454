"""Single-frame DICOM images derived from a source frame.

* :func:`derived_us_image` — the chosen frame as its own US Image (DERIVED\\SECONDARY), clean
  pixels, with the source's ultrasound regions (calibration) and a Source Image Sequence pointing at
  the original SOP instance and frame. DICOM SEG segments this image: highdicom refuses SEG on a
  multi-frame US image without a frame of reference, and a single-frame image keeps the SEG simple
  for every viewer.
* :func:`key_image_sc` — Secondary Capture (workstation) of the frame with the measurement overlay
  burned in (Burned In Annotation YES), for PACS viewers that show no SR.

Attributes are written from a whitelist of the source's Patient / Study / Equipment values, so a
vendor's oddities in the source do not travel into the derived object.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
PATIENT_STUDY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
)
REGION_KEYWORDS = (
    "RegionSpatialFormat",
    "RegionDataType",
    "RegionFlags",
    "RegionLocationMinX0",
    "RegionLocationMinY0",
    "RegionLocationMaxX1",
    "RegionLocationMaxY1",
    "PhysicalUnitsXDirection",
    "PhysicalUnitsYDirection",
    "PhysicalDeltaX",
    "PhysicalDeltaY",
    "ReferencePixelX0",
    "ReferencePixelY0",
)


def _base(
    source: Dataset,
    *,
    sop_class_uid: str,
    sop_instance_uid: str,
    series_instance_uid: str,
    series_number: int,
    series_description: str,
    modality: str,
    pixels: np.ndarray,
    when: dt.datetime,
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = source.get("SpecificCharacterSet", "ISO_IR 100")
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    for keyword in PATIENT_STUDY_KEYWORDS:
        value = source.get(keyword)
        if value is not None:
            setattr(ds, keyword, value)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID"):
        if keyword not in ds:
            setattr(ds, keyword, "")
    for keyword in ("StudyDate", "StudyTime", "ReferringPhysicianName", "AccessionNumber"):
        if keyword not in ds:
            setattr(ds, keyword, "")
    ds.Modality = modality
    ds.SeriesInstanceUID = series_instance_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description[:64]
    ds.Manufacturer = "sonoreview"
    ds.InstanceNumber = 1
    ds.ContentDate = ds.SeriesDate = when.strftime("%Y%m%d")
    ds.ContentTime = ds.SeriesTime = when.strftime("%H%M%S")
    ds.PatientOrientation = ""
    ds.ImageLaterality = "U"
    frame = np.ascontiguousarray(pixels.astype(np.uint8))
    ds.Rows, ds.Columns = int(frame.shape[0]), int(frame.shape[1])
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if frame.ndim == 3:
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
    else:
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
    ds.LossyImageCompression = "00"
    ds.PixelData = frame.tobytes()
    return ds


def _source_reference(source: Dataset, frame_number: int) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID = source.SOPClassUID
    ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    if int(source.get("NumberOfFrames", 1) or 1) > 1:
        ref.ReferencedFrameNumber = frame_number
    return ref


def _regions_for_frame(source: Dataset, frame_number: int) -> list[Dataset]:
    out = []
    for item in source.get("SequenceOfUltrasoundRegions", []):
        region = Dataset()
        for keyword in REGION_KEYWORDS:
            if keyword in item:
                setattr(region, keyword, item.get(keyword))
        if len(region):
            out.append(region)
    del frame_number  # per-frame region ranges are resolved by the caller's calibration rule
    return out


def derived_us_image(
    source: Dataset,
    frame_number: int,
    pixels: np.ndarray,
    *,
    sop_instance_uid: str,
    series_instance_uid: str,
    series_number: int = 902,
    when: dt.datetime | None = None,
) -> Dataset:
    """The chosen frame as a single-frame US Image (DERIVED\\SECONDARY) referencing its source.

    ``pixels``: (rows, cols) uint8 grey or (rows, cols, 3) uint8 RGB, the source frame's size.
    """
    when = when or dt.datetime.now(dt.UTC)
    ds = _base(
        source,
        sop_class_uid=US_IMAGE_STORAGE,
        sop_instance_uid=sop_instance_uid,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        series_description="Frames segmented (derived)",
        modality="US",
        pixels=pixels,
        when=when,
    )
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "NO"
    ds.DerivationDescription = f"Frame {frame_number} of the source image, decoded for display"
    ds.SourceImageSequence = [_source_reference(source, frame_number)]
    regions = _regions_for_frame(source, frame_number)
    if regions:
        ds.SequenceOfUltrasoundRegions = regions
    return ds


def key_image_sc(
    source: Dataset,
    frame_number: int,
    rgb: np.ndarray,
    *,
    sop_instance_uid: str,
    series_instance_uid: str,
    title: str,
    series_number: int = 903,
    when: dt.datetime | None = None,
) -> Dataset:
    """Secondary Capture (RGB) of a frame with the measurements burned in."""
    when = when or dt.datetime.now(dt.UTC)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"a key image needs (rows, cols, 3) RGB pixels, got {rgb.shape}")
    ds = _base(
        source,
        sop_class_uid=SECONDARY_CAPTURE_STORAGE,
        sop_instance_uid=sop_instance_uid,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        series_description="Key images with measurements",
        modality="US",
        pixels=rgb,
        when=when,
    )
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "YES"
    ds.ImageComments = title[:10240]
    ds.DerivationDescription = f"Frame {frame_number} with measurement overlay burned in"
    ds.SourceImageSequence = [_source_reference(source, frame_number)]
    return ds
