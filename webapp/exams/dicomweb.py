"""The site's own DICOMweb subset (WADO-RS metadata and frames) and rendered images.

Enough for Cornerstone3D's ``wadors:`` loader: DICOM JSON metadata per study / series /
instance, and ``/frames/{n}`` (or ``/frames/1,2,3``) as ``multipart/related;
type="application/octet-stream"`` whose parts carry ``Content-Type: application/octet-stream;
transfer-syntax=<UID>``. Frames are the stored bytes, read by seek + read from the byte ranges
recorded at ingest (compressed frames as stored; native frames little-endian). Palette colour
LUTs are numeric Value arrays in the metadata (Cornerstone cannot use InlineBinary for them).
"""

from __future__ import annotations

import io
import json
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from django.conf import settings
from django.db.models import Q, QuerySet
from pydicom.uid import ExplicitVRLittleEndian

from webapp.exams import dicomio
from webapp.exams.dicomio import DicomProblem
from webapp.exams.models import Frame, Instance, Series, Study
from webapp.exams.services import instance_path

OCTET_STREAM = "application/octet-stream"
RENDER_SIZES = (64, 128, 256, 512, 1024)


class NotAcceptable(Exception):
    """The client asked for a representation this server does not produce."""


class FrameNotFound(LookupError):
    """The frame number is outside the instance."""


# --------------------------------------------------------------------------------------------
# Who may see what
# --------------------------------------------------------------------------------------------


def visible_studies(user: Any) -> QuerySet[Study]:
    """Studies ``user`` may open: sonographers their own exams; other clinical roles all."""
    studies = Study.objects.all()
    if getattr(user, "is_superuser", False):
        return studies
    if getattr(user, "role", "") == "sonographer":
        mine = Q(sonographer=user) | Q(series__instances__received_by=user)
        return studies.filter(pk__in=Study.objects.filter(mine).values("pk"))
    return studies


def find_instance(user: Any, sop_uid: str, **uids: str) -> Instance | None:
    """The instance with ``sop_uid`` if ``user`` may see it (and it sits under the given UIDs)."""
    query = Instance.objects.select_related("series__study").filter(sop_instance_uid=sop_uid)
    if "study_uid" in uids:
        query = query.filter(series__study__study_instance_uid=uids["study_uid"])
    if "series_uid" in uids:
        query = query.filter(series__series_instance_uid=uids["series_uid"])
    instance = query.first()
    if instance is None:
        return None
    if getattr(user, "role", "") == "sonographer" and not getattr(user, "is_superuser", False):
        # Only sonographers are limited to their own exams (one query more, for them only).
        if not visible_studies(user).filter(pk=instance.series.study_id).exists():
            return None
    return instance


# --------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------


def served_transfer_syntax(instance: Instance) -> str:
    if instance.transfer_syntax_uid in dicomio.ENCAPSULATED_SYNTAXES:
        return instance.transfer_syntax_uid
    return str(ExplicitVRLittleEndian)


# Bounded: a 16-bit palette's expanded LUTs make a document of ~1 MB.
@lru_cache(maxsize=64)
def _cached_header_json(path: str, sha256: str, served_ts: str, frames: int) -> str:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    document = dicomio.dicom_json(
        ds, transfer_syntax_uid=served_ts, bulk_data_uri="__BULK__", number_of_frames=frames
    )
    return json.dumps(document)


def instance_metadata(instance: Instance, *, base_url: str) -> dict[str, Any]:
    """DICOM JSON of one instance; Pixel Data's BulkDataURI points at ``base_url``."""
    try:
        text = _cached_header_json(
            str(instance_path(instance)),
            instance.sha256,
            served_transfer_syntax(instance),
            instance.number_of_frames,
        )
    except Exception as exc:  # an unreadable stored header: say so instead of a 500
        raise DicomProblem(f"the stored file's header cannot be read ({exc})") from exc
    document = json.loads(text)
    document["7FE00010"]["BulkDataURI"] = base_url
    return document


def instance_base_url(request_base: str, instance: Instance) -> str:
    study = instance.series.study.study_instance_uid
    series = instance.series.series_instance_uid
    return (
        f"{request_base}/dicomweb/studies/{study}/series/{series}/instances/"
        f"{instance.sop_instance_uid}"
    )


def study_instances(study: Study) -> QuerySet[Instance]:
    return Instance.objects.select_related("series__study").filter(series__study=study)


def series_instances(series: Series) -> QuerySet[Instance]:
    return Instance.objects.select_related("series__study").filter(series=series)


def series_qido(series: Series) -> dict[str, Any]:
    return {
        "0020000D": {"vr": "UI", "Value": [series.study.study_instance_uid]},
        "0020000E": {"vr": "UI", "Value": [series.series_instance_uid]},
        "00080060": {"vr": "CS", "Value": [series.modality] if series.modality else []},
        "00200011": {
            "vr": "IS",
            "Value": [series.series_number] if series.series_number is not None else [],
        },
        "0008103E": {"vr": "LO", "Value": [series.description] if series.description else []},
        "00201209": {"vr": "IS", "Value": [series.instances.count()]},
    }


def instance_qido(instance: Instance) -> dict[str, Any]:
    return {
        "0020000D": {"vr": "UI", "Value": [instance.series.study.study_instance_uid]},
        "0020000E": {"vr": "UI", "Value": [instance.series.series_instance_uid]},
        "00080016": {"vr": "UI", "Value": [instance.sop_class_uid]},
        "00080018": {"vr": "UI", "Value": [instance.sop_instance_uid]},
        "00200013": {
            "vr": "IS",
            "Value": [instance.instance_number] if instance.instance_number is not None else [],
        },
        "00280010": {"vr": "US", "Value": [instance.rows]},
        "00280011": {"vr": "US", "Value": [instance.columns]},
        "00280008": {"vr": "IS", "Value": [instance.number_of_frames]},
    }


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


def parse_frame_list(text: str, number_of_frames: int) -> list[int]:
    """``"1,2,3"`` → [1, 2, 3]; raises ValueError naming the bad or missing frame."""
    numbers = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            raise ValueError(f"frame number {part!r} is not a positive integer")
        number = int(part)
        if not 1 <= number <= number_of_frames:
            raise ValueError(f"frame {number} does not exist (the instance has {number_of_frames})")
        numbers.append(number)
    if not numbers:
        raise ValueError("no frame numbers given")
    return numbers


def requested_transfer_syntax(accept: str) -> str | None:
    """The transfer syntax an Accept header asks for: a UID, ``"*"``, or None (anything)."""
    if not accept:
        return None
    wanted: str | None = None
    for media_range in accept.split(","):
        params = [p.strip() for p in media_range.split(";")]
        media = params[0].lower()
        type_param = next(
            (p.split("=", 1)[1].strip('"') for p in params[1:] if p.lower().startswith("type=")),
            None,
        )
        ts = next(
            (
                p.split("=", 1)[1].strip('"')
                for p in params[1:]
                if p.lower().startswith("transfer-syntax=")
            ),
            None,
        )
        if media in ("multipart/related", OCTET_STREAM, "*/*", "multipart/*") and (
            type_param in (None, OCTET_STREAM)
        ):
            if ts in (None, "*"):
                return "*"
            wanted = wanted or ts
        elif media == "multipart/related" and type_param and type_param != OCTET_STREAM:
            continue
    if wanted is None:
        raise NotAcceptable(f"cannot produce {accept!r}; frames are served as {OCTET_STREAM}")
    return wanted


def _frame_ranges(instance: Instance, numbers: list[int] | None = None) -> list[list[list[int]]]:
    """Byte ranges per frame (index = number - 1); only ``numbers`` are loaded when given."""
    query = Frame.objects.filter(instance=instance)
    if numbers is not None:
        query = query.filter(number__in=numbers)
    ranges: list[list[list[int]]] = [[] for _ in range(instance.number_of_frames)]
    for number, byte_ranges in query.values_list("number", "byte_ranges"):
        ranges[number - 1] = byte_ranges
    return ranges


def _reader(instance: Instance, numbers: list[int] | None = None) -> dicomio.FrameReader:
    path = instance_path(instance)
    frames = _frame_ranges(instance, numbers)
    header = (
        _header_for(str(path), instance.sha256)
        if _needs_header(instance)
        else _minimal_header(instance)
    )
    return dicomio.FrameReader(path, header, frames, instance.transfer_syntax_uid)


def _needs_header(instance: Instance) -> bool:
    return instance.transfer_syntax_uid == pydicom.uid.ExplicitVRBigEndian


@lru_cache(maxsize=64)
def _header_for(path: str, sha256: str) -> pydicom.Dataset:
    return dicomio.pixel_header(pydicom.dcmread(path, stop_before_pixels=True))


def _minimal_header(instance: Instance) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.Rows = instance.rows
    ds.Columns = instance.columns
    ds.SamplesPerPixel = instance.samples_per_pixel
    ds.PhotometricInterpretation = instance.photometric_interpretation
    if instance.planar_configuration is not None:
        ds.PlanarConfiguration = instance.planar_configuration
    ds.BitsAllocated = instance.bits_allocated
    ds.BitsStored = instance.bits_stored
    ds.HighBit = instance.bits_stored - 1
    ds.PixelRepresentation = instance.pixel_representation
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = instance.transfer_syntax_uid
    return ds


def frame_parts(
    instance: Instance, numbers: list[int], *, transfer_syntax: str | None
) -> list[tuple[bytes, str]]:
    """(bytes, transfer syntax UID) per requested frame (1-based numbers).

    Stored bytes unless the client asked for Explicit VR Little Endian of a compressed frame:
    then the frame is decoded (colour converted to RGB) and sent raw.
    """
    reader = _reader(instance, numbers)
    parts = []
    for number in numbers:
        data, ts = reader.served_frame(number - 1)
        if transfer_syntax not in (None, "*", ts):
            if transfer_syntax != ExplicitVRLittleEndian:
                raise NotAcceptable(
                    f"frames of this instance are available as {ts} or {ExplicitVRLittleEndian}, "
                    f"not {transfer_syntax}"
                )
            try:
                arr = reader.decode(number - 1)
            except Exception as exc:
                raise DicomProblem(
                    f"frame {number} cannot be decoded ({type(exc).__name__}: {exc})"
                ) from exc
            data, ts = (
                np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes(),
                str(ExplicitVRLittleEndian),
            )
        parts.append((data, ts))
    return parts


def multipart_body(
    parts: list[tuple[bytes, str]], *, media_type: str = OCTET_STREAM
) -> tuple[bytes, str]:
    """A multipart/related body and its Content-Type header value."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for data, ts in parts:
        out.write(f"--{boundary}\r\n".encode())
        # Spelled exactly so: Cornerstone3D looks for "Content-Type:" and "transfer-syntax=".
        out.write(f"Content-Type: {media_type}; transfer-syntax={ts}\r\n\r\n".encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    content_type = f'multipart/related; type="{media_type}"; boundary={boundary}'
    return out.getvalue(), content_type


def instance_file_part(instance: Instance) -> tuple[bytes, str]:
    """The stored Part 10 file as one multipart/related application/dicom body."""
    data = instance_path(instance).read_bytes()
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom; transfer-syntax={instance.transfer_syntax_uid}\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


# --------------------------------------------------------------------------------------------
# Rendered frames and thumbnails
# --------------------------------------------------------------------------------------------


def rendered_frame(
    instance: Instance, number: int, *, size: int | None, image_format: str
) -> bytes:
    """Frame ``number`` (1-based) as PNG or JPEG, shrunk to ``size`` px on its longer side.

    Decodes that frame only. Thumbnails (frame 1, 128 px) are cached on disk beside the media.
    """
    from PIL import Image

    if not 1 <= number <= instance.number_of_frames:
        raise FrameNotFound(
            f"frame {number} does not exist (the instance has {instance.number_of_frames})"
        )
    cache = None
    if size is not None and size <= 256:
        cache = (
            Path(settings.MEDIA_ROOT)
            / "cache"
            / "rendered"
            / f"{instance.sha256}-{number}-{size}.{image_format}"
        )
        if cache.exists():
            return cache.read_bytes()
    try:
        reader = _reader_for_display(instance, number)
        image = dicomio.display_frame(reader, number - 1)
    except DicomProblem:
        raise
    except Exception as exc:  # a stored file whose pixels or LUT cannot be turned into an image
        raise DicomProblem(
            f"frame {number} cannot be decoded ({type(exc).__name__}: {exc})"
        ) from exc
    if size:
        image = dicomio.resize_for_display(image, size)
    out = io.BytesIO()
    pil = Image.fromarray(image)
    if image_format == "jpeg":
        pil.save(out, format="JPEG", quality=90)
    else:
        pil.save(out, format="PNG", compress_level=1)
    data = out.getvalue()
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        tmp.replace(cache)
    return data


def _reader_for_display(instance: Instance, number: int) -> dicomio.FrameReader:
    # Display needs the palette LUT / window from the header (cached per file).
    path = instance_path(instance)
    frames = _frame_ranges(instance, [number])
    return dicomio.FrameReader(
        path, _header_for(str(path), instance.sha256), frames, instance.transfer_syntax_uid
    )
