"""Write phantom frames and sweeps as DICOM: US Image Storage and US Multi-frame Image Storage.

Valid by construction (checked with dciodvfy in the tests when installed): MONOCHROME2, 8 bits,
uncompressed explicit VR little endian, a Sequence of Ultrasound Regions (0018,6011) whose region
covers the sector with PhysicalUnitsX/YDirection = 3 (cm) and PhysicalDeltaX/Y in cm per pixel, so
viewers and the project's calibration code measure in mm. UIDs are derived from the seed and names
(deterministic); patient, study and series UIDs are shared by the files of one exam.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTIFRAME_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.10.1449.1"  # sonoreview phantom writer (private root)


def phantom_uid(*parts: object) -> str:
    """Deterministic UID (2.25 form) from the given parts.

    Built here rather than with ``generate_uid(prefix=None, entropy_srcs=…)``: pydicom ignores the
    entropy sources when the prefix is None and returns a random UUID-derived UID.
    """
    digest = hashlib.sha256("\x1f".join(["sonoreview-phantom", *map(str, parts)]).encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


@dataclass(frozen=True)
class ExamIds:
    """Identifiers shared by all files of one synthetic exam."""

    patient_name: str
    patient_id: str
    study_uid: str
    study_id: str
    accession: str
    study_date: str = "20260101"
    study_time: str = "090000"
    study_description: str = "PHANTOM (synthetic)"
    birth_date: str = "19900101"

    @classmethod
    def for_exam(cls, seed: int, number: int, description: str) -> ExamIds:
        return cls(
            patient_name=f"PHANTOM^DEMO{number}",
            patient_id=f"PHANTOM-{seed}-{number}",
            study_uid=phantom_uid(seed, number, "study"),
            study_id=str(number),
            accession=f"PH{seed:04d}{number:02d}",
            study_date=(dt.date(2026, 1, 1) + dt.timedelta(days=number)).strftime("%Y%m%d"),
            study_description=f"PHANTOM {description}"[:64],
        )


def _region(fov: np.ndarray, pixel_mm: float) -> Dataset:
    rows, cols = np.nonzero(fov)
    r = Dataset()
    r.RegionSpatialFormat = 1  # 2D tissue image
    r.RegionDataType = 1  # tissue
    r.RegionFlags = 0
    r.RegionLocationMinX0 = int(cols.min())
    r.RegionLocationMinY0 = int(rows.min())
    r.RegionLocationMaxX1 = int(cols.max())
    r.RegionLocationMaxY1 = int(rows.max())
    r.PhysicalUnitsXDirection = 3  # cm
    r.PhysicalUnitsYDirection = 3
    r.PhysicalDeltaX = float(pixel_mm) / 10.0
    r.PhysicalDeltaY = float(pixel_mm) / 10.0
    return r


def _base(
    ids: ExamIds,
    *,
    sop_class: str,
    sop_uid: str,
    series_uid: str,
    series_number: int,
    series_description: str,
    instance_number: int,
    image: np.ndarray,
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ids.study_date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = ids.study_time
    ds.AccessionNumber = ids.accession
    ds.Modality = "US"
    ds.Manufacturer = "sonoreview synthetic phantom (not patient data)"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = ids.study_description
    ds.SeriesDescription = series_description
    ds.PatientName = ids.patient_name
    ds.PatientID = ids.patient_id
    ds.PatientBirthDate = ids.birth_date
    ds.PatientSex = "F"
    ds.StudyInstanceUID = ids.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = ids.study_id
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.PatientOrientation = ""
    ds.ImageLaterality = "U"  # unpaired: the fetus
    ds.BurnedInAnnotation = "NO"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(image.shape[-2]), int(image.shape[-1])
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "00"
    return ds


def write_us_image(
    path: Path,
    image: np.ndarray,
    *,
    fov: np.ndarray,
    pixel_mm: float,
    ids: ExamIds,
    series_uid: str,
    sop_uid: str,
    series_number: int = 1,
    instance_number: int = 1,
    series_description: str = "Phantom single frames",
    comments: str = "",
) -> Path:
    """Write one (H, W) uint8 frame as US Image Storage; returns the path."""
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"expected a (H, W) uint8 frame, got {image.dtype} {image.shape}")
    ds = _base(
        ids,
        sop_class=US_IMAGE_STORAGE,
        sop_uid=sop_uid,
        series_uid=series_uid,
        series_number=series_number,
        series_description=series_description,
        instance_number=instance_number,
        image=image,
    )
    ds.ImageType = ["DERIVED", "PRIMARY", "OBSTETRICAL", "0001"]  # value 4: 2D imaging mode
    ds.SequenceOfUltrasoundRegions = [_region(fov, pixel_mm)]
    if comments:
        ds.ImageComments = comments
    ds.PixelData = np.ascontiguousarray(image).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_us_multiframe(
    path: Path,
    frames: np.ndarray,
    *,
    fov: np.ndarray,
    pixel_mm: float,
    frame_time_ms: float,
    ids: ExamIds,
    series_uid: str,
    sop_uid: str,
    series_number: int = 1,
    instance_number: int = 1,
    series_description: str = "Phantom cine sweep",
    comments: str = "",
) -> Path:
    """Write (T, H, W) uint8 frames as US Multi-frame Image Storage with Frame Time and Cine Rate."""
    if frames.dtype != np.uint8 or frames.ndim != 3:
        raise ValueError(f"expected (T, H, W) uint8 frames, got {frames.dtype} {frames.shape}")
    ds = _base(
        ids,
        sop_class=US_MULTIFRAME_IMAGE_STORAGE,
        sop_uid=sop_uid,
        series_uid=series_uid,
        series_number=series_number,
        series_description=series_description,
        instance_number=instance_number,
        image=frames,
    )
    ds.ImageType = ["DERIVED", "PRIMARY", "OBSTETRICAL", "0001"]
    ds.NumberOfFrames = int(frames.shape[0])
    ds.FrameIncrementPointer = (0x0018, 0x1063)
    ds.FrameTime = f"{frame_time_ms:.6g}"
    ds.CineRate = round(1000.0 / frame_time_ms)
    ds.SequenceOfUltrasoundRegions = [_region(fov, pixel_mm)]
    if comments:
        ds.ImageComments = comments
    ds.PixelData = np.ascontiguousarray(frames).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
