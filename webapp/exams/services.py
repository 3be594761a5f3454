"""Exam ingest (one path for upload, PACS pull and C-STORE), calibration, PACS queries, audit.

Every route hands files to ``ingest_file`` / ``ingest_batch``. A file is spooled to a temporary
file under MEDIA_ROOT/incoming (hashing as it goes), checked by ``dicomio.inspect_dicom_file``,
and then, in one database transaction, its Patient/Study/Series/Instance/Frame/region rows are
created and the file is renamed into MEDIA_ROOT/dicom/<study>/<series>/<sop>.dcm. If the
transaction fails the renamed file is removed again: no orphan file, no partial exam. Every
file offered, whatever became of it, leaves an ``IngestEvent`` row.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from typing import IO, Any

import django.dispatch
from django.conf import settings
from django.db import DataError, IntegrityError, transaction
from django.http import HttpRequest

from webapp.core.secrets import SecretUnreadable, UnreadableSecret
from webapp.exams import dicomio
from webapp.exams.dicomio import DicomProblem
from webapp.exams.models import (
    AuditEvent,
    Calibration,
    CalibrationSource,
    ExamSource,
    ExamStatus,
    Frame,
    IngestEvent,
    IngestOutcome,
    Instance,
    PacsNode,
    Patient,
    Series,
    Study,
    UltrasoundRegion,
)

log = logging.getLogger(__name__)

# Limits for one uploaded file and for zip archives (zip bombs: total size and ratio).
MAX_FILE_BYTES = 2 * 1024**3
MAX_ZIP_TOTAL_BYTES = 4 * 1024**3
MAX_ZIP_MEMBERS = 5000
MAX_ZIP_RATIO = 200  # uncompressed / compressed, per member; DICOM rarely exceeds ~20

Source = bytes | Path | IO[bytes] | Any  # Any: Django UploadedFile (has .chunks())

#: Sent after a transaction that stored new instances of a study commits. The analysis pipeline
#: connects a receiver that queues its Celery task (study_id=…). With no receiver the exam stays
#: ``received``.
exam_ready_for_analysis = django.dispatch.Signal()


@dataclass
class IngestResult:
    """What became of one file: ``stored``, ``duplicate`` (already received) or ``rejected``."""

    file_name: str
    outcome: str
    reason: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    study_id: int | None = None
    instance_id: int | None = None
    number_of_frames: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in (IngestOutcome.STORED, IngestOutcome.DUPLICATE)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def queue_analysis(study_id: int) -> None:
    """Hand a study to the analysis pipeline (called after the ingest transaction commits).

    Side effects: sends ``exam_ready_for_analysis``; the pipeline's receiver queues the
    Celery task and moves the exam to ``queued``. Without a receiver nothing happens and the
    exam stays ``received``.
    """
    exam_ready_for_analysis.send(sender=Study, study_id=study_id)


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def incoming_dir() -> Path:
    path = media_root() / "incoming"
    path.mkdir(parents=True, exist_ok=True)
    return path


def instance_relative_path(study_uid: str, series_uid: str, sop_uid: str) -> str:
    # UIDs were checked to be digits and dots only, so they are safe path components.
    return f"dicom/{study_uid}/{series_uid}/{sop_uid}.dcm"


def instance_path(instance: Instance) -> Path:
    return media_root() / instance.file.name


def spool(source: Source) -> tuple[Path, str, int]:
    """Copy ``source`` to a temporary file under MEDIA_ROOT/incoming; return (path, sha256, size).

    Side effect: creates the temporary file (the caller removes or renames it).
    """
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(dir=incoming_dir(), suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(source):
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise DicomProblem(f"the file is larger than {MAX_FILE_BYTES / 1e9:.0f} GB")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name), digest.hexdigest(), size


def _chunks(source: Source, size: int = 1024 * 1024) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        yield bytes(source)
    elif isinstance(source, Path):
        with source.open("rb") as fp:
            yield from iter(lambda: fp.read(size), b"")
    elif hasattr(source, "chunks"):
        yield from source.chunks()
    else:
        yield from iter(lambda: source.read(size), b"")


# --------------------------------------------------------------------------------------------
# Ingest
# --------------------------------------------------------------------------------------------


def ingest_file(
    *,
    source: Source,
    file_name: str,
    route: str,
    user: Any = None,
    pacs_node: PacsNode | None = None,
    peer: str = "",
    batch_id: uuid.UUID | None = None,
    queue: bool = True,
    image_study_uid: str | None = None,
    image_index: int | None = None,
) -> IngestResult:
    """Check and store one file (DICOM, or PNG/JPEG wrapped as Secondary Capture).

    Side effects: on success writes the file under MEDIA_ROOT/dicom and creates the exam rows
    in one transaction; records an ``IngestEvent`` whatever the outcome; when ``queue`` and a
    new instance was stored, calls ``queue_analysis`` once the transaction commits. Never raises
    for bad input: the result says ``rejected`` and why. ``image_study_uid`` groups PNG/JPEG
    images of one batch into one exam (a new one is made if not given).
    """
    file_name = dicomio.clean_text(file_name or "unnamed")[:500] or "unnamed"
    try:
        tmp, sha256, size = spool(source)
    except DicomProblem as exc:
        return record_rejection(
            file_name, str(exc), route=route, user=user, peer=peer, batch_id=batch_id
        )
    try:
        return _ingest_spooled(
            tmp,
            sha256=sha256,
            size=size,
            file_name=file_name,
            route=route,
            user=user,
            pacs_node=pacs_node,
            peer=peer,
            batch_id=batch_id,
            queue=queue,
            image_study_uid=image_study_uid,
            image_index=image_index,
        )
    finally:
        tmp.unlink(missing_ok=True)


def _sniff(path: Path) -> str:
    with path.open("rb") as fp:
        head = fp.read(132)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    return "unknown"


def _ingest_spooled(
    tmp: Path,
    *,
    sha256: str,
    size: int,
    file_name: str,
    route: str,
    user: Any,
    pacs_node: PacsNode | None,
    peer: str,
    batch_id: uuid.UUID | None,
    queue: bool,
    image_study_uid: str | None,
    image_index: int | None,
) -> IngestResult:
    common = {"route": route, "user": user, "peer": peer, "batch_id": batch_id}
    if size == 0:
        return record_rejection(file_name, "the file is empty", size=size, **common)
    kind = _sniff(tmp)
    converted_from = ""
    if kind in ("png", "jpeg"):
        sop_uid = dicomio.deterministic_uid("sonoreview-image", sha256)
        if Instance.objects.filter(sop_instance_uid=sop_uid).exists():
            return _duplicate(file_name, sop_uid, size=size, **common)
        study_uid = image_study_uid or str(dicomio.deterministic_uid("study", str(uuid.uuid4())))
        try:
            ds, converted_from = dicomio.image_to_secondary_capture(
                tmp.read_bytes(),
                file_name=file_name,
                study_instance_uid=study_uid,
                series_instance_uid=dicomio.deterministic_uid("series", study_uid),
                sop_instance_uid=sop_uid,
                instance_number=image_index,
            )
        except DicomProblem as exc:
            return record_rejection(file_name, str(exc), size=size, **common)
        ds.save_as(tmp, enforce_file_format=True)
        sha256 = hashlib.sha256(tmp.read_bytes()).hexdigest()
        size = tmp.stat().st_size
    elif kind == "zip":
        return record_rejection(
            file_name, "a zip archive inside a zip archive is not accepted", size=size, **common
        )
    elif kind != "dicom":
        if file_name.lower().endswith((".dcm", ".dicom")):
            reason = "not a DICOM file (no 'DICM' marker at byte 128), although named .dcm"
        else:
            reason = "not a DICOM file, zip archive, PNG or JPEG image"
        return record_rejection(file_name, reason, size=size, **common)

    try:
        inspected = dicomio.inspect_dicom_file(tmp)
    except DicomProblem as exc:
        return record_rejection(file_name, str(exc), size=size, **common)

    if Instance.objects.filter(sop_instance_uid=inspected.sop_instance_uid).exists():
        return _duplicate(file_name, inspected.sop_instance_uid, size=size, **common)

    relative = instance_relative_path(
        inspected.study_instance_uid, inspected.series_instance_uid, inspected.sop_instance_uid
    )
    final = media_root() / relative
    moved = False
    try:
        with transaction.atomic():
            study, instance = _create_rows(
                inspected,
                relative=relative,
                sha256=sha256,
                size=size,
                file_name=file_name,
                route=route,
                user=user,
                pacs_node=pacs_node,
                converted_from=converted_from,
            )
            IngestEvent.objects.create(
                file_name=file_name,
                size_bytes=size,
                outcome=IngestOutcome.STORED,
                sop_instance_uid=inspected.sop_instance_uid,
                study=study,
                instance=instance,
                **common,
            )
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                # A file without a row (left by a crash before this design) is replaced.
                final.unlink()
            os.replace(tmp, final)
            moved = True
            if queue:
                study_id = study.id
                transaction.on_commit(lambda: queue_analysis(study_id))
    except _ExamLocked as exc:
        return record_rejection(file_name, str(exc), size=size, **common)
    except DataError as exc:
        if moved:
            final.unlink(missing_ok=True)
        return record_rejection(
            file_name,
            f"a value in the file cannot be stored ({exc})".split("\n")[0],
            size=size,
            **common,
        )
    except IntegrityError:
        if moved:
            final.unlink(missing_ok=True)
        # Another process stored the same SOP instance a moment ago.
        if Instance.objects.filter(sop_instance_uid=inspected.sop_instance_uid).exists():
            return _duplicate(file_name, inspected.sop_instance_uid, size=size, **common)
        raise
    except BaseException:
        if moved:
            final.unlink(missing_ok=True)
        raise
    log.info(
        "stored %s (%s, %d frames) from %s as %s",
        file_name,
        inspected.sop_instance_uid,
        inspected.number_of_frames,
        route,
        relative,
    )
    return IngestResult(
        file_name=file_name,
        outcome=IngestOutcome.STORED,
        sop_instance_uid=inspected.sop_instance_uid,
        study_instance_uid=inspected.study_instance_uid,
        study_id=study.id,
        instance_id=instance.id,
        number_of_frames=inspected.number_of_frames,
    )


class _ExamLocked(Exception):
    pass


def _create_rows(
    inspected: dicomio.InspectedFile,
    *,
    relative: str,
    sha256: str,
    size: int,
    file_name: str,
    route: str,
    user: Any,
    pacs_node: PacsNode | None,
    converted_from: str,
) -> tuple[Study, Instance]:
    study = (
        Study.objects.select_for_update()
        .filter(study_instance_uid=inspected.study_instance_uid)
        .first()
    )
    if study is None:
        patient = _patient_for(inspected.patient)
        sonographer = (
            user
            if user is not None and getattr(user, "role", "") == "sonographer"
            else _sonographer_named(inspected.study.get("operators_name", ""))
        )
        study, _ = Study.objects.get_or_create(
            study_instance_uid=inspected.study_instance_uid,
            defaults={
                "patient": patient,
                "source": route,
                "pacs_node": pacs_node,
                "sonographer": sonographer,
                **inspected.study,
            },
        )
    elif study.status in (ExamStatus.SIGNED, ExamStatus.AMENDED):
        raise _ExamLocked(
            f"exam {study.study_instance_uid} is already signed; new images cannot be added to it"
        )
    series, _ = Series.objects.get_or_create(
        series_instance_uid=inspected.series_instance_uid,
        defaults={"study": study, **inspected.series},
    )
    if series.study_id != study.id:
        raise IntegrityError("series belongs to another study")
    calibration_source = (
        CalibrationSource.US_REGIONS
        if any(r.physical_units_x == dicomio.PHYSICAL_UNITS_CM for r in inspected.regions)
        else CalibrationSource.PIXEL_SPACING
        if inspected.pixel_spacing_mm
        else CalibrationSource.NONE
    )
    instance = Instance.objects.create(
        sop_instance_uid=inspected.sop_instance_uid,
        series=series,
        sop_class_uid=inspected.sop_class_uid,
        instance_number=inspected.instance_number,
        transfer_syntax_uid=inspected.transfer_syntax_uid,
        rows=inspected.rows,
        columns=inspected.columns,
        number_of_frames=inspected.number_of_frames,
        samples_per_pixel=inspected.samples_per_pixel,
        photometric_interpretation=inspected.photometric_interpretation,
        planar_configuration=inspected.planar_configuration,
        bits_allocated=inspected.bits_allocated,
        bits_stored=inspected.bits_stored,
        pixel_representation=inspected.pixel_representation,
        frame_time_ms=inspected.frame_time_ms,
        frame_time_vector_ms=inspected.frame_time_vector_ms,
        recommended_frame_rate=inspected.recommended_frame_rate,
        acquisition_datetime=_aware(inspected.acquisition_datetime),
        image_type=inspected.image_type,
        original_filename=Path(file_name).name[:255],
        converted_from=converted_from,
        file=relative,
        sha256=sha256,
        size_bytes=size,
        pixel_data_offset=inspected.pixel_data_offset,
        calibration_source=calibration_source,
        received_by=user,
    )
    offsets = inspected.frame_time_offsets_ms()
    Frame.objects.bulk_create(
        Frame(instance=instance, number=i + 1, byte_ranges=ranges, time_offset_ms=offsets[i])
        for i, ranges in enumerate(inspected.frame_byte_ranges)
    )
    UltrasoundRegion.objects.bulk_create(
        UltrasoundRegion(instance=instance, **{k: v for k, v in vars(r).items()})
        for r in inspected.regions
    )
    mm = inspected.pixel_spacing_mm
    Calibration.objects.create(
        instance=instance,
        source=calibration_source,
        mm_per_pixel_x=mm[1]
        if mm and calibration_source == CalibrationSource.PIXEL_SPACING
        else None,
        mm_per_pixel_y=mm[0]
        if mm and calibration_source == CalibrationSource.PIXEL_SPACING
        else None,
    )
    return study, instance


def _aware(value: Any) -> Any:
    from django.utils import timezone

    if value is None or not settings.USE_TZ:
        return value
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def _sonographer_named(operators_name: str) -> Any:
    """The active sonographer whose DICOM operator name is the file's first Operators' Name
    (exams from a scanner or a PACS have no uploading user), or None."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    key = User.normalised_operator_name(operators_name)
    if not key:
        return None
    return User.objects.filter(dicom_operator_name=key, role="sonographer", is_active=True).first()


def _patient_for(attrs: dict[str, Any]) -> Patient:
    if attrs["patient_id"]:
        patient, _ = Patient.objects.get_or_create(
            patient_id=attrs["patient_id"],
            issuer_of_patient_id=attrs["issuer_of_patient_id"],
            defaults={
                k: v for k, v in attrs.items() if k not in ("patient_id", "issuer_of_patient_id")
            },
        )
        return patient
    return Patient.objects.create(**attrs)


def record_rejection(
    file_name: str,
    reason: str,
    *,
    route: str,
    user: Any = None,
    peer: str = "",
    batch_id: uuid.UUID | None = None,
    size: int | None = None,
) -> IngestResult:
    """Record that ``file_name`` was refused and why. Side effects: an IngestEvent; a log line."""
    file_name, reason = dicomio.clean_text(file_name)[:500], dicomio.clean_text(reason)
    log.warning("rejected %s from %s%s: %s", file_name, route, f" ({peer})" if peer else "", reason)
    IngestEvent.objects.create(
        route=route,
        user=user,
        peer=peer,
        batch_id=batch_id,
        file_name=file_name,
        size_bytes=size,
        outcome=IngestOutcome.REJECTED,
        reason=reason,
    )
    return IngestResult(file_name=file_name, outcome=IngestOutcome.REJECTED, reason=reason)


def _duplicate(
    file_name: str,
    sop_uid: str,
    *,
    route: str,
    user: Any = None,
    peer: str = "",
    batch_id: uuid.UUID | None = None,
    size: int | None = None,
) -> IngestResult:
    instance = (
        Instance.objects.select_related("series__study").filter(sop_instance_uid=sop_uid).first()
    )
    study = instance.series.study if instance else None
    reason = "already received (same SOP Instance UID); not stored again"
    IngestEvent.objects.create(
        route=route,
        user=user,
        peer=peer,
        batch_id=batch_id,
        file_name=file_name,
        size_bytes=size,
        outcome=IngestOutcome.DUPLICATE,
        reason=reason,
        sop_instance_uid=sop_uid,
        study=study,
        instance=instance,
    )
    return IngestResult(
        file_name=file_name,
        outcome=IngestOutcome.DUPLICATE,
        reason=reason,
        sop_instance_uid=sop_uid,
        study_instance_uid=study.study_instance_uid if study else "",
        study_id=study.id if study else None,
        instance_id=instance.id if instance else None,
        number_of_frames=instance.number_of_frames if instance else None,
    )


def ingest_batch(
    *,
    files: Iterable[tuple[str, Source]],
    route: str,
    user: Any = None,
    pacs_node: PacsNode | None = None,
    peer: str = "",
) -> list[IngestResult]:
    """Ingest many files (zip archives expanded); one result per file, in order.

    Side effects: as ``ingest_file`` for each; PNG/JPEG images of the batch go into one new
    exam; each study that received new instances is queued for analysis once, after commit.
    A bad file never stops the rest of the batch.
    """
    batch_id = uuid.uuid4()
    image_study_uid = dicomio.deterministic_uid("upload-batch", str(batch_id))
    results: list[IngestResult] = []
    image_index = 0
    for name, source in files:
        for member_name, member_source, problem in _expand(name, source):
            if problem:
                results.append(
                    record_rejection(
                        member_name, problem, route=route, user=user, peer=peer, batch_id=batch_id
                    )
                )
                continue
            image_index += 1
            results.append(
                ingest_file(
                    source=member_source,
                    file_name=member_name,
                    route=route,
                    user=user,
                    pacs_node=pacs_node,
                    peer=peer,
                    batch_id=batch_id,
                    queue=False,
                    image_study_uid=image_study_uid,
                    image_index=image_index,
                )
            )
    for study_id in sorted({r.study_id for r in results if r.outcome == IngestOutcome.STORED}):
        transaction.on_commit(lambda study_id=study_id: queue_analysis(study_id))
    return results


def _expand(name: str, source: Source) -> Iterator[tuple[str, Source | None, str]]:
    """Yield (name, source, problem) for a file, or for each member of a zip archive."""
    if isinstance(source, Path):
        with source.open("rb") as fp:
            is_zip = _sniff_bytes(fp.read(4))
    else:
        head = _peek(source, 4)
        is_zip = _sniff_bytes(head)
    if not is_zip:
        yield name, source, ""
        return
    with tempfile.TemporaryDirectory(dir=incoming_dir()) as tmpdir:
        archive = Path(tmpdir) / "upload.zip"
        with archive.open("wb") as out:
            for chunk in _chunks(source):
                out.write(chunk)
        yield from _zip_members(name, archive)


def _sniff_bytes(head: bytes) -> bool:
    return head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06")


def _peek(source: Source, n: int) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source[:n])
    fp = source.file if hasattr(source, "file") else source
    pos = fp.tell()
    head = fp.read(n)
    fp.seek(pos)
    return head


def _zip_members(name: str, archive: Path) -> Iterator[tuple[str, Source | None, str]]:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        yield name, None, f"not a readable zip archive ({exc})"
        return
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        total = sum(i.file_size for i in infos)
        if len(infos) > MAX_ZIP_MEMBERS:
            yield name, None, f"the zip archive holds {len(infos)} files (limit {MAX_ZIP_MEMBERS})"
            return
        if total > MAX_ZIP_TOTAL_BYTES:
            yield (
                name,
                None,
                f"the zip archive would expand to {total / 1e9:.1f} GB "
                f"(limit {MAX_ZIP_TOTAL_BYTES / 1e9:.0f} GB): refused as a possible zip bomb",
            )
            return
        for info in infos:
            member = f"{name}/{info.filename}"
            problem = _unsafe_member_name(info.filename)
            if problem:
                yield member, None, problem
                continue
            base = PurePosixPath(info.filename).name
            if base.startswith(".") or info.filename.startswith("__MACOSX/"):
                continue  # OS metadata, not an image
            if info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO:
                yield (
                    member,
                    None,
                    f"compression ratio {info.file_size / info.compress_size:.0f}:1 is beyond "
                    f"{MAX_ZIP_RATIO}:1: refused as a possible zip bomb",
                )
                continue
            if info.flag_bits & 0x1:
                yield member, None, "encrypted zip members are not accepted"
                continue
            # Streamed into the spool file, never held whole in memory; a member that inflates
            # past its declared size, or fails its CRC, is rejected while streaming.
            with zf.open(info) as fp:
                yield member, _BoundedReader(fp, info.file_size), ""


class _BoundedReader:
    """Reads a zip member, refusing to inflate beyond the size its header declares."""

    def __init__(self, fp: IO[bytes], limit: int) -> None:
        self._fp = fp
        self._limit = limit
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        try:
            chunk = self._fp.read(size)
        except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, NotImplementedError) as exc:
            raise DicomProblem(f"cannot be extracted from the zip archive ({exc})") from exc
        self._read += len(chunk)
        if self._read > self._limit:
            raise DicomProblem(
                "the zip member inflates beyond the size its header declares: refused as a "
                "possible zip bomb"
            )
        return chunk


def _unsafe_member_name(filename: str) -> str:
    if "\x00" in filename:
        return "zip member name contains a NUL byte: refused"
    normal = filename.replace("\\", "/")
    path = PurePosixPath(normal)
    if normal.startswith("/") or (len(normal) > 1 and normal[1] == ":"):
        return "zip member has an absolute path: refused (path traversal)"
    if ".." in path.parts:
        return "zip member name contains '..': refused (path traversal)"
    return ""


# --------------------------------------------------------------------------------------------
# Calibration entered by a user
# --------------------------------------------------------------------------------------------


def set_user_calibration(
    *, instance: Instance, mm_per_pixel_x: float, mm_per_pixel_y: float, user: Any, note: str = ""
) -> Calibration:
    """Record a user's calibration for an image that has none from DICOM.

    Side effects: replaces the instance's Calibration row with source ``user`` (who, when);
    audits. Refused for images calibrated by the modality (US regions or Pixel Spacing).
    """
    for value in (mm_per_pixel_x, mm_per_pixel_y):
        if not (0 < value < 10):
            raise ValueError(f"mm per pixel {value} is outside 0–10")
    if instance.calibration_source in (
        CalibrationSource.US_REGIONS,
        CalibrationSource.PIXEL_SPACING,
    ):
        raise ValueError(
            "this image carries its own DICOM calibration; a user calibration is not accepted"
        )
    with transaction.atomic():
        Calibration.objects.filter(instance=instance).delete()
        calibration = Calibration.objects.create(
            instance=instance,
            source=CalibrationSource.USER,
            mm_per_pixel_x=mm_per_pixel_x,
            mm_per_pixel_y=mm_per_pixel_y,
            entered_by=user,
            note=note[:300],
        )
        Instance.objects.filter(pk=instance.pk).update(calibration_source=CalibrationSource.USER)
        instance.calibration_source = CalibrationSource.USER
        audit(
            user,
            AuditEvent.Action.UPDATE,
            instance,
            f"user calibration {mm_per_pixel_x}×{mm_per_pixel_y} mm/px",
        )
    return calibration


# --------------------------------------------------------------------------------------------
# Audit
# --------------------------------------------------------------------------------------------


def audit(request_or_user: Any, action: str, obj: Any, detail: str = "") -> AuditEvent:
    """Record who did what to which patient data, when and from where.

    ``request_or_user``: an HttpRequest (user, client IP and path are taken from it), a user,
    or None (system). ``obj``: a model instance (type and pk recorded; the study UID when it
    belongs to one) or a string. Side effect: one AuditEvent row.
    """
    user = None
    ip = None
    path = ""
    if isinstance(request_or_user, HttpRequest):
        request = request_or_user
        user = request.user if request.user.is_authenticated else None
        ip = _client_ip(request)
        path = request.get_full_path()[:500]
    else:
        user = request_or_user
    if isinstance(obj, str):
        object_type, object_id, study_uid = "text", obj[:100], ""
    else:
        object_type = type(obj).__name__
        object_id = str(getattr(obj, "pk", ""))
        study_uid = _study_uid_of(obj)
    return AuditEvent.objects.create(
        user=user,
        username=getattr(user, "username", "") or "",
        action=action,
        object_type=object_type,
        object_id=object_id,
        study_instance_uid=study_uid,
        detail=detail,
        ip_address=ip,
        path=path,
    )


def _study_uid_of(obj: Any) -> str:
    if isinstance(obj, Study):
        return obj.study_instance_uid
    if isinstance(obj, Series):
        return obj.study.study_instance_uid
    if isinstance(obj, Instance):
        return obj.series.study.study_instance_uid
    return ""


def _client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy sets it.
    return request.META.get("REMOTE_ADDR") or None


# --------------------------------------------------------------------------------------------
# PACS over DICOMweb
# --------------------------------------------------------------------------------------------


def dicomweb_client_for(node: PacsNode) -> Any:
    """A dicomweb-client DICOMwebClient for a PACS node (HTTP basic or bearer auth if set)."""
    import requests
    from dicomweb_client.api import DICOMwebClient

    session = requests.Session()
    if node.auth_type == PacsNode.Auth.BASIC:
        session.auth = (node.username, _opened(node.password, f"password of PACS {node.name}"))
    elif node.auth_type == PacsNode.Auth.BEARER:
        token = _opened(node.bearer_token, f"bearer token of PACS {node.name}")
        session.headers["Authorization"] = f"Bearer {token}"
    # Every request gets the node's timeout; a refused or failing PACS is reported at once
    # (no retries with back-off while a user waits on the page).
    session.request = functools.partial(session.request, timeout=node.timeout_seconds)  # type: ignore[method-assign]
    client = DICOMwebClient(url=node.dicomweb_url.rstrip("/"), session=session)
    client.set_http_retry_params(retry=False)
    return client


def _opened(secret: str, what: str) -> str:
    """A stored secret ready to send, or SecretUnreadable saying what to do (never an empty
    password sent as if it were the real one)."""
    if isinstance(secret, UnreadableSecret):
        raise SecretUnreadable(secret.reason(what))
    return secret


def ensure_configured_pacs_node() -> PacsNode | None:
    """The PACS named by the PACS_DICOMWEB_URL setting, as a PacsNode called "default".

    Side effect: creates that row the first time (admins edit nodes in the admin afterwards).
    Returns None when the setting is empty.
    """
    url = getattr(settings, "PACS_DICOMWEB_URL", None)
    if not url:
        return None
    node, _ = PacsNode.objects.get_or_create(name="default", defaults={"dicomweb_url": url})
    return node


@dataclass
class PacsStudy:
    study_instance_uid: str
    patient_name: str
    patient_id: str
    study_date: str
    description: str
    accession_number: str
    modalities: str
    number_of_instances: int | None
    already_here: bool


def search_pacs(
    *,
    node: PacsNode,
    patient_name: str = "",
    patient_id: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    modality: str = "US",
    limit: int = 100,
) -> list[PacsStudy]:
    """QIDO-RS study search on ``node``. Side effect: one HTTP request to the PACS."""
    filters: dict[str, str] = {}
    if patient_name:
        filters["PatientName"] = patient_name if "*" in patient_name else f"*{patient_name}*"
    if patient_id:
        filters["PatientID"] = patient_id
    if date_from or date_to:
        start = date_from.strftime("%Y%m%d") if date_from else ""
        end = date_to.strftime("%Y%m%d") if date_to else ""
        filters["StudyDate"] = f"{start}-{end}"
    if modality:
        filters["ModalitiesInStudy"] = modality
    client = dicomweb_client_for(node)
    found = client.search_for_studies(
        search_filters=filters,
        limit=limit,
        fields=["StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedInstances"],
    )
    uids = [_json_value(item, "0020000D") for item in found]
    here = set(
        Study.objects.filter(study_instance_uid__in=uids).values_list(
            "study_instance_uid", flat=True
        )
    )
    results = []
    for item in found:
        uid = _json_value(item, "0020000D")
        name = item.get("00100010", {}).get("Value", [{}])[0]
        results.append(
            PacsStudy(
                study_instance_uid=uid,
                patient_name=name.get("Alphabetic", "") if isinstance(name, dict) else str(name),
                patient_id=_json_value(item, "00100020"),
                study_date=_json_value(item, "00080020"),
                description=_json_value(item, "00081030"),
                accession_number=_json_value(item, "00080050"),
                modalities="\\".join(str(v) for v in item.get("00080061", {}).get("Value", [])),
                number_of_instances=_int_or_none(_json_value(item, "00201208")),
                already_here=uid in here,
            )
        )
    return results


def _json_value(item: dict[str, Any], tag: str) -> str:
    values = item.get(tag, {}).get("Value", [])
    return str(values[0]) if values else ""


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def import_study_from_pacs(
    *, node: PacsNode, study_instance_uid: str, user: Any = None
) -> list[IngestResult]:
    """Retrieve one study from ``node`` (WADO-RS, instance by instance) and ingest it.

    Side effects: HTTP requests to the PACS; as ``ingest_file`` per instance; the study is
    queued for analysis once after commit if anything new was stored. A failing instance is a
    rejected result; the others still land.
    """
    if not dicomio.is_valid_uid(study_instance_uid):
        return [
            record_rejection(
                study_instance_uid[:64],
                "not a valid Study Instance UID",
                route=ExamSource.PACS,
                user=user,
                peer=node.name,
            )
        ]
    client = dicomweb_client_for(node)
    batch_id = uuid.uuid4()
    results: list[IngestResult] = []
    instances = client.search_for_instances(study_instance_uid=study_instance_uid)
    if not instances:
        return [
            record_rejection(
                study_instance_uid,
                f"study not found on PACS {node.name}",
                route=ExamSource.PACS,
                user=user,
                peer=node.name,
                batch_id=batch_id,
            )
        ]
    for item in instances:
        series_uid = _json_value(item, "0020000E")
        sop_uid = _json_value(item, "00080018")
        label = f"{node.name}:{sop_uid}"
        if Instance.objects.filter(sop_instance_uid=sop_uid).exists():
            results.append(
                _duplicate(
                    label,
                    sop_uid,
                    route=ExamSource.PACS,
                    user=user,
                    peer=node.name,
                    batch_id=batch_id,
                )
            )
            continue
        try:
            data = _retrieve_instance_bytes(client, study_instance_uid, series_uid, sop_uid)
        except Exception as exc:  # network or PACS error for this instance only
            results.append(
                record_rejection(
                    label,
                    f"retrieve from PACS failed ({exc})",
                    route=ExamSource.PACS,
                    user=user,
                    peer=node.name,
                    batch_id=batch_id,
                )
            )
            continue
        results.append(
            ingest_file(
                source=data,
                file_name=label,
                route=ExamSource.PACS,
                peer=node.name,
                user=user,
                pacs_node=node,
                batch_id=batch_id,
                queue=False,
            )
        )
    for study_id in sorted({r.study_id for r in results if r.outcome == IngestOutcome.STORED}):
        transaction.on_commit(lambda study_id=study_id: queue_analysis(study_id))
    return results


def _retrieve_instance_bytes(client: Any, study_uid: str, series_uid: str, sop_uid: str) -> bytes:
    """The instance's Part 10 bytes as the PACS stores them (WADO-RS, any transfer syntax).

    Taking the bytes rather than a parsed dataset keeps the file the PACS holds, byte for byte,
    instead of a re-encoding of it.
    """
    url = f"{client.base_url}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
    response = client._session.get(
        url,
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
    )
    response.raise_for_status()
    parts = split_multipart(response.content, response.headers.get("Content-Type", ""))
    if len(parts) != 1:
        raise ValueError(f"expected one instance, the PACS sent {len(parts)} parts")
    return parts[0][1]


def split_multipart(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """Parts of a multipart/related body: (headers, bytes) each."""
    boundary = ""
    for item in content_type.split(";")[1:]:
        key, _, value = item.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        raise ValueError(f"not a multipart response ({content_type or 'no Content-Type'})")
    delimiter = b"--" + boundary.encode()
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, data[:-2] if data.endswith(b"\r\n") else data))
    return parts


def studies_on_pacs_since(*, node: PacsNode, since: date, modality: str = "US") -> list[str]:
    """Study Instance UIDs on ``node`` dated ``since`` or later. Side effect: one QIDO-RS request."""
    return [
        s.study_instance_uid
        for s in search_pacs(node=node, date_from=since, modality=modality, limit=1000)
    ]


def remove_stale_incoming(*, older_than_seconds: int = 24 * 3600) -> int:
    """Delete temporary spool files left by crashed processes. Returns how many were removed."""
    import time

    count = 0
    now = time.time()
    for path in incoming_dir().iterdir():
        if now - path.stat().st_mtime > older_than_seconds:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            count += 1
    return count
