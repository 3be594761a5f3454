"""Reading, checking, framing and decoding ultrasound DICOM files; calibration from US regions.

Pure pydicom + numpy: no Django here, so the ingest service, the DICOM receiver, the benchmark and
the inference wrappers can all use it.

Frame access design. At ingest ``inspect_dicom_file`` records, for every frame, the byte ranges
its pixel data occupies in the stored file (one range for native pixel data or a one-fragment
compressed frame; several when a compressed frame was split into fragments). Serving
``/frames/{n}`` over DICOMweb is then one seek and one read of the stored bytes -- no decoding,
no whole-file parse -- which is what Cornerstone3D's ``wadors:`` loader wants (it decodes in the
browser). Rendering a PNG/thumbnail decodes only that frame's bytes (``decode_frame``). We chose
this over a decoded ``.npy`` cache because a decoded 120-frame 640×480 RGB cine is 110 MB against
6 MB stored, and the browser needs the stored bytes anyway.
"""

from __future__ import annotations

import io
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels.processing import _expand_segmented_lut, apply_color_lut
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

NATIVE_SYNTAXES = frozenset({ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian})
ENCAPSULATED_SYNTAXES = frozenset(
    {
        JPEGBaseline8Bit,
        JPEGExtended12Bit,
        JPEGLossless,
        JPEGLosslessSV1,
        JPEGLSLossless,
        JPEGLSNearLossless,
        JPEG2000Lossless,
        JPEG2000,
        HTJ2KLossless,
        HTJ2KLosslessRPCL,
        HTJ2K,
        RLELossless,
    }
)
SUPPORTED_TRANSFER_SYNTAXES = NATIVE_SYNTAXES | ENCAPSULATED_SYNTAXES

# Limits that keep one upload from exhausting memory or disk. A large US cine is ~1000 frames of
# 1024×768 RGB; a 60,000×60,000 image is not an ultrasound image.
MAX_ROWS = 8192
MAX_COLUMNS = 8192
MAX_FRAMES = 10_000
MAX_DECODED_BYTES = 4 * 1024**3

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_ITEM = 0xE000FFFE  # (FFFE,E000) read as a little-endian uint32 (group, element)
_SEQ_DELIM = 0xE0DDFFFE

PALETTE_LUT_COLOURS = ("Red", "Green", "Blue")


class DicomProblem(ValueError):
    """The file cannot be accepted; the message says why in words a user can act on."""


@dataclass(frozen=True)
class Region:
    """One Sequence of Ultrasound Regions item. Bounds inclusive, in pixels; deltas per pixel."""

    index: int
    x0: int
    y0: int
    x1: int
    y1: int
    spatial_format: int | None = None
    data_type: int | None = None
    flags: int | None = None
    physical_units_x: int | None = None
    physical_units_y: int | None = None
    physical_delta_x: float | None = None
    physical_delta_y: float | None = None
    reference_pixel_x0: int | None = None
    reference_pixel_y0: int | None = None
    first_frame: int | None = None
    last_frame: int | None = None


@dataclass
class InspectedFile:
    """Everything the ingest service needs from one checked DICOM file."""

    transfer_syntax_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    rows: int
    columns: int
    number_of_frames: int
    samples_per_pixel: int
    photometric_interpretation: str
    planar_configuration: int | None
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    pixel_data_offset: int
    frame_byte_ranges: list[list[list[int]]]
    frame_time_ms: float | None
    frame_time_vector_ms: list[float] | None
    recommended_frame_rate: float | None
    regions: list[Region]
    pixel_spacing_mm: tuple[float, float] | None  # (row spacing, column spacing)
    patient: dict[str, Any]
    study: dict[str, Any]
    series: dict[str, Any]
    instance_number: int | None
    image_type: str
    acquisition_datetime: datetime | None
    dataset: Dataset = field(repr=False)

    def frame_time_offsets_ms(self) -> list[float | None]:
        return frame_time_offsets(
            self.number_of_frames, self.frame_time_ms, self.frame_time_vector_ms
        )


def frame_time_offsets(
    number_of_frames: int, frame_time_ms: float | None, frame_time_vector_ms: list[float] | None
) -> list[float | None]:
    """Time of each frame from the first (ms), from Frame Time Vector, else Frame Time."""
    if frame_time_vector_ms and len(frame_time_vector_ms) == number_of_frames:
        # Each vector entry is the time since the previous frame (the first is usually 0).
        offsets = np.cumsum([0.0, *frame_time_vector_ms[1:]]).tolist()
        return [float(x) for x in offsets]
    if frame_time_ms:
        return [i * frame_time_ms for i in range(number_of_frames)]
    return [None] * number_of_frames


def is_valid_uid(value: str) -> bool:
    return bool(value) and len(value) <= 64 and bool(_UID_RE.match(value))


# --------------------------------------------------------------------------------------------
# Inspecting (validating) a file
# --------------------------------------------------------------------------------------------


def inspect_dicom_file(path: Path, *, decode_check: bool = True) -> InspectedFile:
    """Read and check one DICOM file; return what ingest needs, or raise DicomProblem.

    Checks: DICOM preamble/structure, an image SOP instance with UIDs, a supported transfer
    syntax, sane dimensions, native pixel data exactly rows × columns × frames × samples × bytes
    long, encapsulated frames that can be found, and (``decode_check``) that the first and last
    frames decode. Reads the file; no side effects.
    """
    size = path.stat().st_size
    if size == 0:
        raise DicomProblem("the file is empty")
    with path.open("rb") as fp:
        head = fp.read(132)
    if len(head) < 132 or head[128:132] != b"DICM":
        raise DicomProblem(
            "not a DICOM file (no 'DICM' marker at byte 128; a DICOM Part 10 file is expected)"
        )
    try:
        # Large values are deferred: native pixel data is never loaded here, only its offset.
        ds = pydicom.dcmread(path, defer_size=4096)
        ds.get("StudyInstanceUID")  # forces the top-level parse of small elements
    except InvalidDicomError as exc:
        raise DicomProblem(f"not a readable DICOM file ({exc})") from exc
    except (EOFError, struct.error) as exc:
        raise DicomProblem("the file is truncated (it ends inside a DICOM element)") from exc
    except Exception as exc:  # pydicom raises many types on corrupt headers
        raise DicomProblem(f"the DICOM header is corrupt ({type(exc).__name__}: {exc})") from exc

    meta = getattr(ds, "file_meta", None)
    ts = str(getattr(meta, "TransferSyntaxUID", "") or "")
    if not ts:
        raise DicomProblem("the file meta information has no Transfer Syntax UID (0002,0010)")
    if ts not in SUPPORTED_TRANSFER_SYNTAXES:
        name = UID(ts).name if ts else "missing"
        raise DicomProblem(
            f"unsupported transfer syntax {ts} ({name}); supported: uncompressed, JPEG, "
            "JPEG-LS, JPEG 2000, HTJ2K and RLE"
        )

    try:
        return _inspect_dataset(path, ds, ts, size, decode_check=decode_check)
    except DicomProblem:
        raise
    except (EOFError, struct.error) as exc:
        raise DicomProblem("the file is truncated (it ends inside a DICOM element)") from exc
    except Exception as exc:
        raise DicomProblem(f"the DICOM data is corrupt ({type(exc).__name__}: {exc})") from exc


def _required_uid(ds: Dataset, keyword: str) -> str:
    value = str(ds.get(keyword, "") or "").strip()
    if not value:
        raise DicomProblem(f"{keyword} is missing")
    if not is_valid_uid(value):
        raise DicomProblem(f"{keyword} {value[:80]!r} is not a valid DICOM UID")
    return value


def _int_attr(ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    if value is None or value == "":
        raise DicomProblem(f"{keyword} is missing (an image needs it)")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise DicomProblem(f"{keyword} {value!r} is not a number") from exc


def _inspect_dataset(
    path: Path, ds: Dataset, ts: str, size: int, *, decode_check: bool
) -> InspectedFile:
    sop_class = _required_uid(ds, "SOPClassUID")
    sop_instance = _required_uid(ds, "SOPInstanceUID")
    study_uid = _required_uid(ds, "StudyInstanceUID")
    series_uid = _required_uid(ds, "SeriesInstanceUID")

    pixel_elem = ds.get_item(0x7FE00010, keep_deferred=True)
    if pixel_elem is None:
        raise DicomProblem("the object has no Pixel Data (7FE0,0010): it is not an image")

    rows = _int_attr(ds, "Rows")
    columns = _int_attr(ds, "Columns")
    frames = _int_attr(ds, "NumberOfFrames", 1)
    samples = _int_attr(ds, "SamplesPerPixel", 1)
    bits_allocated = _int_attr(ds, "BitsAllocated")
    bits_stored = _int_attr(ds, "BitsStored", bits_allocated)
    pixel_representation = _int_attr(ds, "PixelRepresentation", 0)
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip()
    planar = ds.get("PlanarConfiguration")
    planar = int(planar) if planar not in (None, "") else None

    if rows <= 0 or columns <= 0 or frames <= 0:
        raise DicomProblem(f"image size {columns}×{rows}×{frames} frames is empty")
    if rows > MAX_ROWS or columns > MAX_COLUMNS:
        raise DicomProblem(
            f"image size {columns}×{rows} is beyond the limit of {MAX_COLUMNS}×{MAX_ROWS} pixels"
        )
    if frames > MAX_FRAMES:
        raise DicomProblem(f"{frames} frames is beyond the limit of {MAX_FRAMES}")
    if samples not in (1, 3):
        raise DicomProblem(f"Samples per Pixel {samples} is not supported (1 or 3)")
    if bits_allocated not in (8, 16) or not 1 <= bits_stored <= bits_allocated:
        raise DicomProblem(
            f"Bits Allocated {bits_allocated} / Bits Stored {bits_stored} is not supported "
            "(8 or 16 bits allocated)"
        )
    if photometric not in {
        "MONOCHROME1",
        "MONOCHROME2",
        "RGB",
        "YBR_FULL",
        "YBR_FULL_422",
        "PALETTE COLOR",
        "YBR_RCT",
        "YBR_ICT",
    }:
        raise DicomProblem(f"Photometric Interpretation {photometric!r} is not supported")
    if photometric == "PALETTE COLOR" and "RedPaletteColorLookupTableDescriptor" not in ds:
        raise DicomProblem("PALETTE COLOR image without a palette colour lookup table")
    if (samples == 3) != (photometric not in {"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"}):
        raise DicomProblem(
            f"Samples per Pixel {samples} does not fit Photometric Interpretation {photometric}"
        )
    bytes_per_frame = rows * columns * samples * (bits_allocated // 8)
    if ts in NATIVE_SYNTAXES and photometric == "YBR_FULL_422":
        bytes_per_frame = rows * columns * 2 * (bits_allocated // 8)
    if bytes_per_frame * frames > MAX_DECODED_BYTES:
        raise DicomProblem(
            f"decoded size {bytes_per_frame * frames / 1e9:.1f} GB is beyond the "
            f"{MAX_DECODED_BYTES / 1e9:.1f} GB limit"
        )

    value_tell = int(pixel_elem.value_tell)
    if ts in NATIVE_SYNTAXES:
        length = int(pixel_elem.length)
        expected = bytes_per_frame * frames
        if length == 0xFFFFFFFF:
            raise DicomProblem(
                "Pixel Data is encapsulated (compressed) but the transfer syntax says uncompressed"
            )
        if value_tell + length > size:
            raise DicomProblem(
                f"the file is truncated: Pixel Data should hold {length} bytes but the file "
                f"ends {value_tell + length - size} bytes early"
            )
        if length not in (expected, expected + 1):  # +1: even-length padding
            raise DicomProblem(
                f"Pixel Data is {length} bytes but rows × columns × frames × samples × bytes "
                f"= {rows}×{columns}×{frames}×{samples}×{bits_allocated // 8} = {expected} bytes"
            )
        ranges = [[[value_tell + i * bytes_per_frame, bytes_per_frame]] for i in range(frames)]
    else:
        if pixel_elem.length != 0xFFFFFFFF:
            raise DicomProblem(
                f"the transfer syntax {UID(ts).name} needs encapsulated Pixel Data, but it is not"
            )
        ranges = _encapsulated_frame_ranges(path, value_tell, size, frames, ds)

    regions = regions_from_dataset(ds, frames)
    pixel_spacing = _pixel_spacing(ds)
    frame_time = _float_or_none(ds.get("FrameTime"))
    ftv = ds.get("FrameTimeVector")
    frame_time_vector = [float(x) for x in ftv] if ftv not in (None, "") else None
    if frame_time_vector is not None and len(frame_time_vector) != frames:
        frame_time_vector = None  # inconsistent vectors are not used for playback
    rate = _float_or_none(ds.get("RecommendedDisplayFrameRate")) or _float_or_none(
        ds.get("CineRate")
    )

    inspected = InspectedFile(
        transfer_syntax_uid=ts,
        sop_class_uid=sop_class,
        sop_instance_uid=sop_instance,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        rows=rows,
        columns=columns,
        number_of_frames=frames,
        samples_per_pixel=samples,
        photometric_interpretation=photometric,
        planar_configuration=planar,
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        pixel_representation=pixel_representation,
        pixel_data_offset=value_tell,
        frame_byte_ranges=ranges,
        frame_time_ms=frame_time,
        frame_time_vector_ms=frame_time_vector,
        recommended_frame_rate=rate,
        regions=regions,
        pixel_spacing_mm=pixel_spacing,
        patient={
            "patient_id": _text(ds, "PatientID", 64),
            "issuer_of_patient_id": _text(ds, "IssuerOfPatientID", 64),
            "name": _text(ds, "PatientName", 320),
            "birth_date": _da(ds.get("PatientBirthDate")),
            "sex": (
                _text(ds, "PatientSex", 1).upper() if _text(ds, "PatientSex", 1) in "MFOmfo" else ""
            ),
        },
        study={
            "study_date": _da(ds.get("StudyDate")),
            "study_time": _tm(ds.get("StudyTime")),
            "accession_number": _text(ds, "AccessionNumber", 16),
            "study_id": _text(ds, "StudyID", 16),
            "description": _text(ds, "StudyDescription", 64),
            "referring_physician": _text(ds, "ReferringPhysicianName", 320),
            "performing_physician": _names(ds, "PerformingPhysicianName", 320),
            "operators_name": _names(ds, "OperatorsName", 320),
        },
        series={
            "modality": _text(ds, "Modality", 16),
            "series_number": _int_or_none(ds.get("SeriesNumber")),
            "description": _text(ds, "SeriesDescription", 64),
        },
        instance_number=_int_or_none(ds.get("InstanceNumber")),
        image_type=clean_text(
            "\\".join(str(v) for v in (ds.get("ImageType") or []))
            if not isinstance(ds.get("ImageType"), str)
            else str(ds.get("ImageType"))
        )[:200],
        acquisition_datetime=_dt(ds.get("AcquisitionDateTime"))
        or _combine(_da(ds.get("AcquisitionDate")), _tm(ds.get("AcquisitionTime"))),
        dataset=ds,
    )
    if decode_check:
        reader = FrameReader(path, inspected_header(inspected), ranges, ts)
        for index in sorted({0, frames - 1}):
            try:
                reader.decode(index)
            except DicomProblem:
                raise
            except Exception as exc:
                raise DicomProblem(
                    f"frame {index + 1} cannot be decoded ({type(exc).__name__}: {exc})"
                ) from exc
    return inspected


def _encapsulated_frame_ranges(
    path: Path, value_tell: int, size: int, frames: int, ds: Dataset
) -> list[list[list[int]]]:
    """Byte ranges of each frame's fragments in an encapsulated Pixel Data element."""
    fragments: list[tuple[int, int]] = []  # (offset of fragment value, length)
    bot: list[int] = []
    with path.open("rb") as fp:
        fp.seek(value_tell)
        position = value_tell
        first = True
        while True:
            header = fp.read(8)
            if len(header) < 8:
                raise DicomProblem(
                    "the file is truncated: the compressed Pixel Data ends before its "
                    "sequence delimiter"
                )
            tag, length = struct.unpack("<II", header)
            position += 8
            if tag == _SEQ_DELIM:
                break
            if tag != _ITEM:
                raise DicomProblem(
                    f"the compressed Pixel Data is corrupt (unexpected tag {tag:08X} at byte "
                    f"{position - 8})"
                )
            if length == 0xFFFFFFFF or position + length > size:
                raise DicomProblem(
                    "the file is truncated: a compressed fragment runs past the end of the file"
                )
            if first:
                if length % 4:
                    raise DicomProblem("the Basic Offset Table length is not a multiple of 4")
                bot = list(struct.unpack(f"<{length // 4}I", fp.read(length)))
                first = False
            else:
                fragments.append((position, length))
                fp.seek(length, io.SEEK_CUR)
            position += length
        if not fragments:
            raise DicomProblem("the compressed Pixel Data holds no image fragments")

        def grouped_by_offsets(offsets: Sequence[int]) -> list[list[list[int]]]:
            starts = [f[0] - 8 - (fragments[0][0] - 8) for f in fragments]
            groups: list[list[list[int]]] = []
            bounds = [*offsets, math.inf]
            for i in range(len(offsets)):
                group = [
                    [off, ln]
                    for (off, ln), start in zip(fragments, starts, strict=True)
                    if bounds[i] <= start < bounds[i + 1]
                ]
                if not group:
                    raise DicomProblem("the Basic Offset Table points at no fragment")
                groups.append(group)
            return groups

        if frames == 1:
            return [[[off, ln] for off, ln in fragments]]
        if len(fragments) == frames:
            return [[[off, ln]] for off, ln in fragments]
        if len(fragments) < frames:
            raise DicomProblem(
                f"{frames} frames declared but the compressed Pixel Data has only "
                f"{len(fragments)} fragments"
            )
        if bot and len(bot) == frames:
            return grouped_by_offsets(bot)
        eot = ds.get("ExtendedOffsetTable")
        if eot:
            offsets = list(struct.unpack(f"<{len(eot) // 8}Q", bytes(eot)))
            if len(offsets) == frames:
                return grouped_by_offsets(offsets)
        # No offset table: a frame ends with a fragment whose codestream ends with the JPEG EOI /
        # JPEG 2000 EOC marker (FFD9), trailing padding aside.
        groups = []
        current: list[list[int]] = []
        for off, ln in fragments:
            current.append([off, ln])
            fp.seek(off + max(0, ln - 4))
            tail = fp.read(min(ln, 4)).rstrip(b"\x00")
            if tail.endswith(b"\xff\xd9"):
                groups.append(current)
                current = []
        if current or len(groups) != frames:
            raise DicomProblem(
                f"cannot find the boundaries of {frames} frames among {len(fragments)} "
                "compressed fragments (no offset table)"
            )
        return groups


def regions_from_dataset(ds: Dataset, frames: int = 1) -> list[Region]:
    """The Sequence of Ultrasound Regions as ``Region`` values (empty if absent).

    Regions of a classic US object apply to every frame. Where an enhanced object gives
    per-frame regions (Per-Frame Functional Groups), each frame's items are kept with their
    frame applicability.
    """
    regions: list[Region] = []
    for index, item in enumerate(ds.get("SequenceOfUltrasoundRegions") or []):
        regions.append(_region(item, index))
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if not regions and per_frame:
        index = 0
        for frame_no, group in enumerate(per_frame, start=1):
            for item in group.get("SequenceOfUltrasoundRegions") or []:
                regions.append(_region(item, index, first_frame=frame_no, last_frame=frame_no))
                index += 1
    return regions


def _region(item: Dataset, index: int, **frames: int) -> Region:
    def geti(keyword: str) -> int | None:
        value = _int_or_none(item.get(keyword))
        # Coded values (format, type, units) are small; anything else is corrupt, not a code.
        if value is not None and keyword in _SMALL_CODES and not 0 <= value <= 32767:
            return None
        return value

    x0, y0, x1, y1 = (
        geti("RegionLocationMinX0"),
        geti("RegionLocationMinY0"),
        geti("RegionLocationMaxX1"),
        geti("RegionLocationMaxY1"),
    )
    if None in (x0, y0, x1, y1):
        raise DicomProblem(f"ultrasound region {index + 1} has no complete location (X0/Y0/X1/Y1)")
    if not (0 <= x0 <= x1 <= MAX_COLUMNS and 0 <= y0 <= y1 <= MAX_ROWS):  # type: ignore[operator]
        raise DicomProblem(
            f"ultrasound region {index + 1} has impossible bounds ({x0},{y0})–({x1},{y1})"
        )
    return Region(
        index=index,
        x0=int(x0),  # type: ignore[arg-type]
        y0=int(y0),  # type: ignore[arg-type]
        x1=int(x1),  # type: ignore[arg-type]
        y1=int(y1),  # type: ignore[arg-type]
        spatial_format=geti("RegionSpatialFormat"),
        data_type=geti("RegionDataType"),
        flags=geti("RegionFlags"),
        physical_units_x=geti("PhysicalUnitsXDirection"),
        physical_units_y=geti("PhysicalUnitsYDirection"),
        physical_delta_x=_float_or_none(item.get("PhysicalDeltaX")),
        physical_delta_y=_float_or_none(item.get("PhysicalDeltaY")),
        reference_pixel_x0=geti("ReferencePixelX0"),
        reference_pixel_y0=geti("ReferencePixelY0"),
        **frames,
    )


_SMALL_CODES = {
    "RegionSpatialFormat",
    "RegionDataType",
    "PhysicalUnitsXDirection",
    "PhysicalUnitsYDirection",
}


def _pixel_spacing(ds: Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value and len(value) == 2:
            try:
                row, col = float(value[0]), float(value[1])
            except (TypeError, ValueError):
                return None
            if row > 0 and col > 0 and math.isfinite(row) and math.isfinite(col):
                return row, col
    return None


def _text(ds: Dataset, keyword: str, limit: int) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    return clean_text(str(value))[:limit]


def _names(ds: Dataset, keyword: str, limit: int) -> str:
    """A person-name element that may hold several values, joined with DICOM's backslash (str()
    of a multi-value would give Python's list syntax)."""
    value = ds.get(keyword)
    if value is None:
        return ""
    values = value if isinstance(value, MultiValue) else [value]
    return clean_text("\\".join(str(v) for v in values))[:limit]


def clean_text(value: str) -> str:
    """Text safe to store: no NUL or other control characters (PostgreSQL refuses NUL)."""
    return "".join(ch for ch in value if ch >= " " or ch in "\t").strip()


def _float_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int_or_none(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if -(2**31) <= number < 2**31 else None


def _da(value: Any) -> date | None:
    text = str(value or "").strip()
    try:
        return datetime.strptime(text[:8], "%Y%m%d").date() if len(text) >= 8 else None
    except ValueError:
        return None


def _tm(value: Any) -> time | None:
    text = str(value or "").strip().replace(":", "")
    if len(text) < 2:
        return None
    try:
        hh, mm, ss = int(text[0:2]), int(text[2:4] or 0), int(text[4:6] or 0)
        return time(hh, mm, min(ss, 59))
    except ValueError:
        return None


def _dt(value: Any) -> datetime | None:
    text = str(value or "").strip()
    return _combine(_da(text[:8]), _tm(text[8:14])) if len(text) >= 8 else None


def _combine(d: date | None, t: time | None) -> datetime | None:
    return datetime.combine(d, t or time(0, 0)) if d else None


# --------------------------------------------------------------------------------------------
# Frames: stored bytes and decoding
# --------------------------------------------------------------------------------------------

_PIXEL_MODULE = (
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData",
    "WindowCenter",
    "WindowWidth",
    "RescaleSlope",
    "RescaleIntercept",
    "VOILUTFunction",
)


def inspected_header(inspected: InspectedFile) -> Dataset:
    return pixel_header(inspected.dataset)


def pixel_header(ds: Dataset) -> Dataset:
    """The Image Pixel module of ``ds`` (what decoding one frame needs), little-endian.

    A big-endian source's palette LUT words are byte-swapped here so that everything
    downstream reads little-endian values; ``FrameReader`` swaps the pixel bytes likewise.
    """
    header = Dataset()
    source_ts = ds.file_meta.TransferSyntaxUID
    for keyword in _PIXEL_MODULE:
        if keyword in ds:
            elem = ds[keyword]
            if source_ts == ExplicitVRBigEndian and keyword.endswith("LookupTableData"):
                swapped = np.frombuffer(bytes(elem.value), dtype=">u2").astype("<u2").tobytes()
                header.add_new(elem.tag, "OW", swapped)
            else:
                header[keyword] = elem
    header.file_meta = FileMetaDataset()
    header.file_meta.TransferSyntaxUID = (
        ExplicitVRLittleEndian if source_ts == ExplicitVRBigEndian else source_ts
    )
    return header


class FrameReader:
    """Reads one frame's stored bytes by seek + read, and decodes one frame at a time.

    ``header`` is ``pixel_header(...)`` of the file; ``transfer_syntax_uid`` is the stored one.
    """

    def __init__(
        self,
        path: Path,
        header: Dataset,
        frame_byte_ranges: list[list[list[int]]],
        transfer_syntax_uid: str | None = None,
    ):
        self.path = path
        self.header = header
        self.ranges = frame_byte_ranges
        self.transfer_syntax_uid = str(transfer_syntax_uid or header.file_meta.TransferSyntaxUID)

    @property
    def number_of_frames(self) -> int:
        return len(self.ranges)

    def stored_bytes(self, index: int) -> bytes:
        """Frame ``index`` (0-based) exactly as stored: native pixels or a compressed codestream."""
        if not 0 <= index < len(self.ranges):
            raise IndexError(f"frame {index + 1} does not exist ({len(self.ranges)} frames)")
        parts = []
        with self.path.open("rb") as fp:
            for offset, length in self.ranges[index]:
                fp.seek(offset)
                chunk = fp.read(length)
                if len(chunk) != length:
                    raise DicomProblem(
                        f"frame {index + 1}: the stored file is shorter than recorded"
                    )
                parts.append(chunk)
        return b"".join(parts)

    def _little_endian_bytes(self, index: int) -> bytes:
        data = self.stored_bytes(index)
        if self.transfer_syntax_uid != ExplicitVRBigEndian:
            return data
        # Big endian: 16-bit words are swapped; so are 8-bit pixels packed in OW words.
        if int(self.header.BitsAllocated) == 8:
            with self.path.open("rb") as fp:
                # Native frames are contiguous: the element header sits before frame 1.
                offset, length = self.ranges[index][0]
                fp.seek(offset - index * length - 8)
                vr = fp.read(2)
            if vr != b"OW" or len(data) % 2:
                return data
        return np.frombuffer(data, dtype=">u2").astype("<u2").tobytes()

    def served_frame(self, index: int) -> tuple[bytes, str]:
        """Frame bytes for DICOMweb and their transfer syntax.

        Compressed frames go out as stored. Native frames go out as little-endian bytes under
        Explicit VR Little Endian (the pixel bytes of implicit and explicit LE are identical;
        big-endian ones are byte-swapped).
        """
        ts = self.transfer_syntax_uid
        if ts in ENCAPSULATED_SYNTAXES:
            return self.stored_bytes(index), ts
        return self._little_endian_bytes(index), str(ExplicitVRLittleEndian)

    def decode(self, index: int, *, raw: bool = False) -> np.ndarray:
        """Decode frame ``index`` only. YBR is converted to RGB unless ``raw``; no palette/VOI."""
        data = self._little_endian_bytes(index)
        ds = Dataset()
        for elem in self.header:
            ds[elem.tag] = elem
        ds.file_meta = self.header.file_meta
        ds.NumberOfFrames = 1
        ts = self.transfer_syntax_uid
        if ts in ENCAPSULATED_SYNTAXES:
            ds.PixelData = encapsulate([data])
            ds["PixelData"].VR = "OB"
        else:
            ds.PixelData = data
            ds["PixelData"].VR = "OW" if int(ds.BitsAllocated) > 8 else "OB"
        return pydicom.pixels.pixel_array(ds, raw=raw)


def display_frame(reader: FrameReader, index: int) -> np.ndarray:
    """Frame ``index`` as display-ready uint8: (rows, columns) grey or (rows, columns, 3) RGB.

    Palette colour goes through its LUT; monochrome uses the file's window if any, else the
    stored bit range; MONOCHROME1 is inverted.
    """
    header = reader.header
    photometric = str(header.PhotometricInterpretation)
    fast = _pillow_jpeg_rgb(reader, index, photometric)
    if fast is not None:
        return fast
    arr = reader.decode(index)
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, header)
        if rgb.dtype != np.uint8:
            rgb = (rgb >> 8).astype(np.uint8)
        return rgb
    if arr.ndim == 3:
        if arr.dtype == np.uint8:
            return arr
        bits = int(header.BitsStored)
        return np.clip(arr.astype(np.float32) / (2**bits - 1) * 255, 0, 255).astype(np.uint8)
    grey = arr.astype(np.float32)
    center, width = header.get("WindowCenter"), header.get("WindowWidth")
    if center is not None and width is not None:
        c = float(
            center[0] if isinstance(center, Sequence) and not isinstance(center, str) else center
        )
        w = float(width[0] if isinstance(width, Sequence) and not isinstance(width, str) else width)
        slope = float(header.get("RescaleSlope", 1) or 1)
        intercept = float(header.get("RescaleIntercept", 0) or 0)
        grey = grey * slope + intercept
        low, high = c - w / 2, c + w / 2
    elif arr.dtype == np.uint8:
        low, high = 0.0, 255.0
    else:
        low, high = float(grey.min()), float(grey.max())
    out = np.clip((grey - low) / max(high - low, 1e-6) * 255, 0, 255).astype(np.uint8)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return out


def _pillow_jpeg_rgb(reader: FrameReader, index: int, photometric: str) -> np.ndarray | None:
    """8-bit YCbCr JPEG baseline frames through Pillow's libjpeg: ~7× faster than pydicom's
    numpy colour conversion here, within a few grey levels of it (display only, never
    measurement)."""
    if reader.transfer_syntax_uid != JPEGBaseline8Bit or photometric not in (
        "YBR_FULL_422",
        "YBR_FULL",
    ):
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(reader.stored_bytes(index))) as image:
            if image.mode != "RGB":
                return None
            rgb = np.asarray(image)
    except (OSError, SyntaxError, ValueError):
        return None
    if rgb.shape != (int(reader.header.Rows), int(reader.header.Columns), 3):
        return None
    return rgb


def resize_for_display(image: np.ndarray, max_size: int) -> np.ndarray:
    """Shrink (never enlarge) so the longer side is ``max_size`` pixels, keeping the aspect."""
    from PIL import Image

    height, width = image.shape[:2]
    scale = min(1.0, max_size / max(height, width))
    if scale >= 1.0:
        return image
    pil = Image.fromarray(image)
    pil = pil.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BILINEAR)
    return np.asarray(pil)


# --------------------------------------------------------------------------------------------
# DICOM JSON for DICOMweb metadata
# --------------------------------------------------------------------------------------------


def palette_lut_values(ds: Dataset) -> dict[str, list[int]] | None:
    """Expanded palette LUT entries per colour (segmented LUTs expanded), or None.

    Cornerstone3D's wadors loader needs the LUTs as numeric Value arrays in the metadata.
    """
    if "RedPaletteColorLookupTableDescriptor" not in ds:
        return None
    desc = [int(v) for v in ds.RedPaletteColorLookupTableDescriptor]
    entries = desc[0] or 65536
    nominal = desc[2]
    is_little = ds.file_meta.TransferSyntaxUID != ExplicitVRBigEndian
    out: dict[str, list[int]] = {}
    for colour in PALETTE_LUT_COLOURS:
        plain = ds.get(f"{colour}PaletteColorLookupTableData")
        segmented = ds.get(f"Segmented{colour}PaletteColorLookupTableData")
        if plain is not None:
            data = bytes(plain)
            depth = round(len(data) / entries * 8)
            dtype = np.dtype(f"{'<' if is_little else '>'}u{max(depth, 8) // 8}")
            values = np.frombuffer(data[: entries * dtype.itemsize], dtype=dtype)
        elif segmented is not None:
            data = bytes(segmented)
            byte_depth = nominal // 8
            fmt = f"{'<' if is_little else '>'}{len(data) // byte_depth}{'B' if byte_depth == 1 else 'H'}"
            values = np.asarray(_expand_segmented_lut(struct.unpack(fmt, data), fmt))
        else:
            return None
        out[colour] = [int(v) for v in values]
    return out


def dicom_json(
    ds: Dataset, *, transfer_syntax_uid: str, bulk_data_uri: str, number_of_frames: int
) -> dict[str, Any]:
    """DICOM JSON (PS3.18 F.2) of one instance for WADO-RS metadata.

    Pixel Data becomes a BulkDataURI; palette LUTs become numeric Value arrays (expanded from
    segmented ones); other large binary values are left out; the served transfer syntax is
    given in (0002,0010).
    """
    skip = {0x7FE00010, 0x7FE00008, 0x7FE00009}
    lut_values = palette_lut_values(ds)
    for colour in PALETTE_LUT_COLOURS:
        for keyword in (
            f"{colour}PaletteColorLookupTableData",
            f"Segmented{colour}PaletteColorLookupTableData",
        ):
            tag = pydicom.datadict.tag_for_keyword(keyword)
            if tag is not None:
                skip.add(tag)

    def bulk_handler(elem: Any) -> str:
        return ""

    clean = Dataset()
    for tag in list(ds.keys()):
        if tag in skip or tag.group == 0x0002 or tag.is_private:
            continue
        try:
            clean.add(ds[tag])
        except Exception:  # an unreadable value is left out rather than failing the viewer
            continue
    result = clean.to_json_dict(
        bulk_data_threshold=64 * 1024,
        bulk_data_element_handler=bulk_handler,
        suppress_invalid_tags=True,
    )
    # Drop binary values we did not inline (they would be empty BulkDataURIs).
    result = {k: v for k, v in result.items() if v.get("BulkDataURI", None) != ""}
    result["00020010"] = {"vr": "UI", "Value": [transfer_syntax_uid]}
    result["00280008"] = {"vr": "IS", "Value": [number_of_frames]}
    result["7FE00010"] = {
        "vr": "OB" if int(ds.get("BitsAllocated", 8)) <= 8 else "OW",
        "BulkDataURI": bulk_data_uri,
    }
    if lut_values:
        for colour, tag in zip(
            PALETTE_LUT_COLOURS, ("00281201", "00281202", "00281203"), strict=True
        ):
            result[tag] = {"vr": "OW", "Value": lut_values[colour]}
        # Cornerstone reads the descriptor's first value as the entry count; 0 means 65536.
    return result


# --------------------------------------------------------------------------------------------
# Non-DICOM images (research PNG/JPEG) as Secondary Capture
# --------------------------------------------------------------------------------------------


def image_to_secondary_capture(
    data: bytes,
    *,
    file_name: str,
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    instance_number: int | None = None,
) -> tuple[Dataset, str]:
    """Wrap a PNG/JPEG image as a Secondary Capture Image (uncompressed), and its kind.

    The SOP Instance UID is the caller's (derive it from the image bytes to de-duplicate).
    No patient identity is invented; no calibration is implied (a user may enter one).
    """
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_ROWS * MAX_COLUMNS
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = (image.format or "").lower()
            if kind not in {"png", "jpeg"}:
                raise DicomProblem(f"image format {image.format!r} is not accepted (PNG or JPEG)")
            if image.width > MAX_COLUMNS or image.height > MAX_ROWS:
                raise DicomProblem(
                    f"image size {image.width}×{image.height} is beyond the limit of "
                    f"{MAX_COLUMNS}×{MAX_ROWS} pixels"
                )
            image.load()
            if image.mode in {"I;16", "I;16B", "I", "I;16L"}:
                # 16-bit grey PNGs keep their depth (converting to 8-bit would clip them).
                arr = np.asarray(image).astype(np.uint16)
            else:
                grey = image.mode in {"L", "LA", "1"} or (
                    image.mode == "P" and _palette_is_grey(image)
                )
                arr = np.asarray(image.convert("L" if grey else "RGB"))
    except DicomProblem:
        raise
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise DicomProblem(f"not a readable PNG/JPEG image ({exc})") from exc
    now = datetime.now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyInstanceUID = study_instance_uid
    ds.SeriesInstanceUID = series_instance_uid
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.PatientName = ""
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = now.strftime("%Y%m%d")
    ds.StudyTime = now.strftime("%H%M%S")
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number or 1
    ds.StudyDescription = "Uploaded images"
    ds.SeriesDescription = "Uploaded images"
    ds.DerivationDescription = f"Converted from {kind.upper()} file {file_name[:40]}"[:1024]
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.Rows, ds.Columns = int(arr.shape[0]), int(arr.shape[1])
    ds.SamplesPerPixel = 1 if arr.ndim == 2 else 3
    ds.PhotometricInterpretation = "MONOCHROME2" if arr.ndim == 2 else "RGB"
    if arr.ndim == 3:
        ds.PlanarConfiguration = 0
    bits = 16 if arr.dtype == np.uint16 else 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = arr.astype(f"<u{bits // 8}").tobytes()
    ds["PixelData"].VR = "OW" if bits == 16 else "OB"
    return ds, kind


def _palette_is_grey(image: Any) -> bool:
    palette = image.getpalette() or []
    triples = [palette[i : i + 3] for i in range(0, len(palette), 3)]
    return all(r == g == b for r, g, b in triples)


def deterministic_uid(*parts: str) -> str:
    """A UID derived from the given strings (same inputs, same UID)."""
    return str(generate_uid(entropy_srcs=list(parts)))


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------

PHYSICAL_UNITS_CM = 3


class RegionLike(Protocol):
    x0: int
    y0: int
    x1: int
    y1: int
    physical_units_x: int | None
    physical_units_y: int | None
    physical_delta_x: float | None
    physical_delta_y: float | None
    first_frame: int | None
    last_frame: int | None


def calibration_for_points(
    regions: Sequence[RegionLike],
    points: Sequence[tuple[float, float]],
    *,
    frame: int | None = None,
) -> tuple[float, float, RegionLike] | None:
    """mm per pixel (x, y) and the region for a measurement, or None (the caller shows px).

    ``points`` are (x, y) pixel coordinates (column, row). A calibration is returned only when
    the points lie in one region (bounds inclusive) whose physical units are cm in both
    directions (PhysicalUnits 3) with positive finite deltas, applicable to ``frame`` (1-based;
    regions without frame limits apply to every frame). When several such regions hold all the
    points they must agree on the deltas; otherwise the answer is ambiguous and None.
    Works with ``Region`` values and ``UltrasoundRegion`` rows alike.
    """
    if not points:
        return None
    candidates = []
    for region in regions:
        if (
            region.physical_units_x != PHYSICAL_UNITS_CM
            or region.physical_units_y != PHYSICAL_UNITS_CM
        ):
            continue
        dx, dy = region.physical_delta_x, region.physical_delta_y
        if dx is None or dy is None or not (math.isfinite(dx) and math.isfinite(dy)):
            continue
        if dx <= 0 or dy <= 0:
            continue
        if frame is not None:
            first = getattr(region, "first_frame", None)
            last = getattr(region, "last_frame", None)
            if (first is not None and frame < first) or (last is not None and frame > last):
                continue
        if all(region.x0 <= x <= region.x1 and region.y0 <= y <= region.y1 for x, y in points):
            candidates.append(region)
    if not candidates:
        return None
    first = candidates[0]
    key = (first.physical_delta_x, first.physical_delta_y)
    if any((r.physical_delta_x, r.physical_delta_y) != key for r in candidates[1:]):
        return None
    return float(first.physical_delta_x) * 10.0, float(first.physical_delta_y) * 10.0, first  # type: ignore[arg-type]
