"""Report services: build every document of a sign-off, and write the DICOM ones back to the PACS.

Flow: the review app's ``sign_exam`` calls :func:`schedule_reports` inside its transaction; after
commit the Celery task ``generate_reports`` (queue ``default``) calls :func:`generate_reports`,
which writes the PDF, the two SRs, the key images, the derived frame(s) and the SEG(s), one
``ReportDocument`` each, and a ``Writeback`` per DICOM document; after that commit one
``stow_object`` task per document calls :func:`send_writeback`. A PACS that is down never touches
the sign-off: the write-back is retried with backoff (``REPORTS_STOW_BACKOFF_S``) up to
``REPORTS_STOW_MAX_ATTEMPTS`` times, then marked failed and the admins are told (mail_admins, and
the failure shows on the exam's report panel and in the admin).

Generation is idempotent per sign-off: documents already written for (study, kind, label, version)
are kept, so a redelivered task finishes the job without duplicates. DICOM UIDs are derived from
the study UID, kind, label and version, so a rebuilt object has the same identity on the PACS.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from io import BytesIO
from typing import Any

import numpy as np
import pydicom
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import mail_admins
from django.db import DatabaseError, transaction
from django.utils import timezone

from inference.reporting.content import ReportContent, stable_uid
from inference.reporting.images import derived_us_image, key_image_sc
from inference.reporting.overlay import burn_in
from inference.reporting.seg import build_seg
from inference.reporting.tid1500 import build_tid1500
from inference.reporting.tid5000 import build_tid5000
from webapp.exams import services as exam_services
from webapp.exams.models import AuditEvent, PacsNode, Study
from webapp.reports.collect import Collected, collect
from webapp.reports.models import (
    DICOM_KINDS,
    ReportDocument,
    ReportGeneration,
    ReportKind,
    Writeback,
    WritebackStatus,
)

log = logging.getLogger(__name__)

DEFAULT_BACKOFF_S = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
SERIES_NUMBERS = {
    ReportKind.SR5000: 900,
    ReportKind.SR1500: 901,
    ReportKind.DERIVED_IMAGE: 902,
    ReportKind.KEY_IMAGE: 903,
    ReportKind.SEG: 904,
}


def max_attempts() -> int:
    return int(getattr(settings, "REPORTS_STOW_MAX_ATTEMPTS", len(DEFAULT_BACKOFF_S)))


def backoff_s(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    delays = getattr(settings, "REPORTS_STOW_BACKOFF_S", DEFAULT_BACKOFF_S)
    return float(delays[min(attempt, len(delays)) - 1])


def report_uid(study_uid: str, *parts: object) -> str:
    """A stable 2.25 UID for one report object (same inputs → same UID)."""
    return stable_uid("sonoreview-report", study_uid, *parts)


# --------------------------------------------------------------------------------------------
# Scheduling (called by the review app)
# --------------------------------------------------------------------------------------------


def schedule_reports(*, signoff: Any) -> ReportGeneration | None:
    """Record that ``signoff`` needs its reports and queue ``generate_reports`` after commit.

    Side effects: one ReportGeneration row (pending), a Celery task published on commit. A broker
    that is down is logged, never raised: the sign-off stands, and the generation stays pending
    (``python manage.py send_pending_reports`` or the panel's "Build again" picks it up).
    """
    try:
        with transaction.atomic():  # a savepoint: a failure here must not undo the signature
            generation, _ = ReportGeneration.objects.get_or_create(
                signoff=signoff, defaults={"study_id": signoff.study_id}
            )
    except DatabaseError:
        log.exception("could not record the report generation of sign-off %s", signoff.pk)
        return None
    transaction.on_commit(lambda: _publish_generation(generation.pk))
    return generation


def _publish_generation(generation_id: int) -> None:
    from webapp.reports.tasks import generate_reports as task

    try:
        task.apply_async((generation_id,), queue="default")
    except Exception as exc:  # broker down: the row stays pending and visible
        log.warning("could not queue report generation %s: %s", generation_id, exc)


def _publish_stow(writeback_id: int, countdown: float = 0) -> None:
    from webapp.reports.tasks import stow_object as task

    if countdown and getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        # In-process tasks (demo without a broker) would retry at once, in the user's request:
        # leave the retry to the sweep instead.
        return
    try:
        task.apply_async((writeback_id,), queue="default", countdown=countdown)
    except Exception as exc:
        log.warning("could not queue write-back %s: %s", writeback_id, exc)


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


@dataclass
class Built:
    kind: str
    label: str
    data: bytes
    content_type: str
    filename: str
    dataset: pydicom.Dataset | None = None


def _dicom_bytes(ds: pydicom.Dataset) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _previous(study: Study, kind: str, label: str, version: int) -> ReportDocument | None:
    return (
        ReportDocument.objects.filter(study=study, kind=kind, label=label, version__lt=version)
        .order_by("-version")
        .first()
    )


def _previous_datasets(study: Study, kind: str, version: int) -> list[pydicom.Dataset]:
    docs = ReportDocument.objects.filter(study=study, kind=kind, version__lt=version)
    out = []
    for doc in docs.order_by("version"):
        with doc.file.open("rb") as fp:
            out.append(pydicom.dcmread(fp, stop_before_pixels=True))
    return out


def _frame_pixels(collected: Collected, sop_uid: str, frame_number: int) -> np.ndarray:
    from webapp.analysis.runtime import InstanceFrames

    return InstanceFrames(collected.instances[sop_uid]).frame(frame_number)


def build_documents(collected: Collected) -> list[Built]:
    """Every document of one report version, in memory (no writes)."""
    from webapp.reports.pdf import render_pdf

    c: ReportContent = collected.content
    study = collected.study
    uid = study.study_instance_uid
    v = c.version
    built: list[Built] = []
    key_pixels: dict[str, np.ndarray] = {}
    for k in collected.key_frames:
        frame = _frame_pixels(collected, k.source.sop_instance_uid, k.source.frame_number)
        masks = [
            s.mask
            for s in c.segments
            if s.source.key == k.source.key and s.mask.shape == frame.shape[:2]
        ]
        rgb = burn_in(
            frame,
            [(m.kind, m.geometry_px, f"{m.kind} {m.value_mm:.1f} mm") for m in k.measurements],
            masks=masks,
        )
        key_pixels[k.label] = rgb
        sc = key_image_sc(
            k.source.header,
            k.source.frame_number,
            rgb,
            sop_instance_uid=report_uid(uid, "key-image", k.label, v),
            series_instance_uid=report_uid(uid, "key-image", "series"),
            title=f"{k.title}: "
            + ", ".join(f"{m.kind} {m.value_mm:.1f} mm" for m in k.measurements),
            series_number=SERIES_NUMBERS[ReportKind.KEY_IMAGE],
            when=c.signed_at,
        )
        sc.InstanceNumber = len([b for b in built if b.kind == ReportKind.KEY_IMAGE]) + 1
        built.append(
            Built(
                ReportKind.KEY_IMAGE,
                k.label,
                _dicom_bytes(sc),
                "application/dicom",
                f"key-{k.label}-v{v}.dcm",
                sc,
            )
        )
    if c.measurements:
        previous = _previous_datasets(study, ReportKind.SR5000, v)
        sr = build_tid5000(
            c,
            series_instance_uid=report_uid(uid, "sr5000", "series"),
            sop_instance_uid=report_uid(uid, "sr5000", "", v),
            instance_number=v,
            previous=previous,
        )
        built.append(
            Built(
                ReportKind.SR5000,
                "",
                _dicom_bytes(sr),
                "application/dicom",
                f"sr-tid5000-v{v}.dcm",
                sr,
            )
        )
        previous = _previous_datasets(study, ReportKind.SR1500, v)
        sr = build_tid1500(
            c,
            series_instance_uid=report_uid(uid, "sr1500", "series"),
            sop_instance_uid=report_uid(uid, "sr1500", "", v),
            instance_number=v,
            previous=previous,
        )
        built.append(
            Built(
                ReportKind.SR1500,
                "",
                _dicom_bytes(sr),
                "application/dicom",
                f"sr-tid1500-v{v}.dcm",
                sr,
            )
        )
    by_frame: dict[tuple[str, int], list] = {}
    for s in c.segments:
        by_frame.setdefault(s.source.key, []).append(s)
    for n, (key, segments) in enumerate(by_frame.items(), start=1):
        source = segments[0].source
        label = "+".join(s.structure for s in segments)[:80]
        pixels = _frame_pixels(collected, source.sop_instance_uid, source.frame_number)
        image = derived_us_image(
            source.header,
            source.frame_number,
            pixels,
            sop_instance_uid=report_uid(uid, "derived-image", key[0], key[1]),
            series_instance_uid=report_uid(uid, "derived-image", "series"),
            series_number=SERIES_NUMBERS[ReportKind.DERIVED_IMAGE],
            when=c.signed_at,
        )
        image.InstanceNumber = n
        # The derived frame is the same pixels in every version: one object, reused.
        built.append(
            Built(
                ReportKind.DERIVED_IMAGE,
                label,
                _dicom_bytes(image),
                "application/dicom",
                f"frame-{label}.dcm",
                image,
            )
        )
        seg = build_seg(
            image,
            segments,
            series_instance_uid=report_uid(uid, "seg", "series"),
            sop_instance_uid=report_uid(uid, "seg", label, v),
            series_number=SERIES_NUMBERS[ReportKind.SEG],
            software_version=c.software_version,
        )
        built.append(
            Built(
                ReportKind.SEG,
                label,
                _dicom_bytes(seg),
                "application/dicom",
                f"seg-{label}-v{v}.dcm",
                seg,
            )
        )
    pdf = render_pdf(collected, key_pixels)
    built.append(Built(ReportKind.PDF, "", pdf, "application/pdf", f"report-v{v}.pdf"))
    return built


def _pacs_target(study: Study) -> tuple[PacsNode | None, str]:
    """The exam's own PACS (where it came from), else the configured default (PACS_DICOMWEB_URL)."""
    node = study.pacs_node if study.pacs_node_id and study.pacs_node.is_active else None
    if node is None:
        node = exam_services.ensure_configured_pacs_node()
    return node, node.dicomweb_url if node is not None else ""


def generate_reports(*, generation_id: int) -> list[ReportDocument]:
    """Build and store every document of the generation's sign-off; queue the write-backs.

    Side effects: files under MEDIA_ROOT/reports/<study UID>/, ReportDocument rows (kept if
    already there), a Writeback row per DICOM document, the generation marked done (or failed
    with the reason, re-raised), an audit event, stow tasks queued after commit.
    """
    generation = ReportGeneration.objects.select_related(
        "signoff__study", "signoff__signed_by"
    ).get(pk=generation_id)
    signoff = generation.signoff
    study = signoff.study
    ReportGeneration.objects.filter(pk=generation_id).update(attempts=generation.attempts + 1)
    try:
        built = build_documents(collect(signoff))
    except Exception as exc:
        ReportGeneration.objects.filter(pk=generation_id).update(
            status=ReportGeneration.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000]
        )
        raise
    node, url = _pacs_target(study)
    docs: list[ReportDocument] = []
    with transaction.atomic():
        for b in built:
            version = signoff.sequence
            if b.kind == ReportKind.DERIVED_IMAGE:
                sop = str(b.dataset.SOPInstanceUID)
                existing = ReportDocument.objects.filter(study=study, sop_instance_uid=sop).first()
                if existing is not None:
                    docs.append(existing)
                    continue
            doc = ReportDocument.objects.filter(
                study=study, kind=b.kind, label=b.label, version=version
            ).first()
            if doc is None:
                doc = ReportDocument(
                    study=study,
                    signoff=signoff,
                    kind=b.kind,
                    label=b.label,
                    version=version,
                    sha256=hashlib.sha256(b.data).hexdigest(),
                    size_bytes=len(b.data),
                    content_type=b.content_type,
                    supersedes=_previous(study, b.kind, b.label, version),
                )
                if b.dataset is not None:
                    doc.sop_class_uid = str(b.dataset.SOPClassUID)
                    doc.sop_instance_uid = str(b.dataset.SOPInstanceUID)
                    doc.series_instance_uid = str(b.dataset.SeriesInstanceUID)
                doc.file.save(
                    f"{study.study_instance_uid}/v{version}/{b.filename}",
                    ContentFile(b.data),
                    save=False,
                )
                doc.save()
            docs.append(doc)
            if doc.is_dicom and not hasattr(doc, "writeback"):
                Writeback.objects.create(
                    document=doc,
                    pacs_node=node,
                    dicomweb_url=url,
                    status=WritebackStatus.PENDING if url else WritebackStatus.NO_PACS,
                )
        ReportGeneration.objects.filter(pk=generation_id).update(
            status=ReportGeneration.Status.DONE, error="", finished_at=timezone.now()
        )
        exam_services.audit(
            None,
            AuditEvent.Action.CREATE,
            study,
            f"reports v{signoff.sequence}: " + ", ".join(sorted({d.kind for d in docs})),
        )
        pending = [
            d.writeback.pk
            for d in docs
            if d.is_dicom and d.writeback.status == WritebackStatus.PENDING
        ]
        transaction.on_commit(lambda: [_publish_stow(pk) for pk in pending])
    return docs


# --------------------------------------------------------------------------------------------
# Write-back
# --------------------------------------------------------------------------------------------


def _client(writeback: Writeback) -> Any:
    if writeback.pacs_node_id:
        return exam_services.dicomweb_client_for(writeback.pacs_node)
    import requests
    from dicomweb_client.api import DICOMwebClient

    session = requests.Session()
    timeout = int(getattr(settings, "PACS_TIMEOUT_SECONDS", 60))
    session.request = _with_timeout(session.request, timeout)  # type: ignore[method-assign]
    client = DICOMwebClient(url=writeback.dicomweb_url.rstrip("/"), session=session)
    client.set_http_retry_params(retry=False)
    return client


def _with_timeout(request: Any, timeout: int) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", timeout)
        return request(*args, **kwargs)

    return call


@dataclass
class StowOutcome:
    status: str
    retry_in_s: float | None = None


def send_writeback(*, writeback_id: int) -> StowOutcome:
    """STOW-RS one document to its PACS once. Side effects: the Writeback row updated (sent, or
    retrying with the error and next try, or failed and admins told after the last attempt), an
    audit event on success. Returns the outcome; the caller schedules the retry."""
    with transaction.atomic():
        wb = (
            Writeback.objects.select_for_update(of=("self",))
            .select_related("document__study", "pacs_node")
            .get(pk=writeback_id)
        )
        if wb.status in (WritebackStatus.SENT, WritebackStatus.NO_PACS, WritebackStatus.FAILED):
            return StowOutcome(wb.status)
        wb.attempts += 1
        wb.last_attempt_at = timezone.now()
        wb.save(update_fields=["attempts", "last_attempt_at"])
    doc = wb.document
    try:
        with doc.file.open("rb") as fp:
            ds = pydicom.dcmread(fp)
        client = _client(wb)
        response = client.store_instances(datasets=[ds])
        failed = getattr(response, "FailedSOPSequence", None) if response is not None else None
        if failed:
            reason = failed[0].get("FailureReason", "?")
            raise RuntimeError(f"the PACS refused the object (failure reason {reason})")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if wb.attempts >= max_attempts():
            Writeback.objects.filter(pk=wb.pk).update(
                status=WritebackStatus.FAILED,
                last_error=error,
                next_retry_at=None,
                admins_notified_at=timezone.now(),
            )
            _tell_admins(wb, error)
            return StowOutcome(WritebackStatus.FAILED)
        delay = backoff_s(wb.attempts)
        Writeback.objects.filter(pk=wb.pk).update(
            status=WritebackStatus.RETRYING,
            last_error=error,
            next_retry_at=timezone.now() + timedelta(seconds=delay),
        )
        return StowOutcome(WritebackStatus.RETRYING, delay)
    Writeback.objects.filter(pk=wb.pk).update(
        status=WritebackStatus.SENT, sent_at=timezone.now(), next_retry_at=None, last_error=""
    )
    exam_services.audit(
        None,
        AuditEvent.Action.EXPORT,
        doc.study,
        f"STOW-RS {doc.get_kind_display()} v{doc.version} {doc.sop_instance_uid} → {wb.dicomweb_url}",
    )
    return StowOutcome(WritebackStatus.SENT)


def _tell_admins(wb: Writeback, error: str) -> None:
    doc = wb.document
    subject = (
        f"PACS write-back failed: {doc.get_kind_display()} of study {doc.study.study_instance_uid}"
    )
    body = (
        f"sonoreview gave up sending {doc.get_kind_display()} v{doc.version} "
        f"(SOP Instance UID {doc.sop_instance_uid}) to {wb.dicomweb_url} after {wb.attempts} "
        f"attempts.\nLast error: {error}\nRetry it from the exam's report panel or the admin."
    )
    log.error("%s — %s", subject, error)
    try:
        mail_admins(subject, body, fail_silently=True)
    except Exception:  # mail trouble must not hide the failure: the row says it too
        log.exception("could not mail the admins")


def retry_writeback(*, writeback_id: int, user: Any) -> Writeback:
    """Send a failed or waiting write-back again now (admin/obstetrician action).

    Side effects: status back to pending with a fresh attempt budget, audit event, stow task
    queued after commit. A write-back with no PACS configured takes the current target.
    """
    with transaction.atomic():
        wb = (
            Writeback.objects.select_for_update(of=("self",))
            .select_related("document__study")
            .get(pk=writeback_id)
        )
        if wb.status == WritebackStatus.SENT:
            return wb
        if wb.status == WritebackStatus.NO_PACS:
            wb.pacs_node, wb.dicomweb_url = _pacs_target(wb.document.study)
            if not wb.dicomweb_url:
                return wb
        wb.status = WritebackStatus.PENDING
        wb.attempts = 0
        wb.next_retry_at = None
        wb.admins_notified_at = None
        wb.save()
        exam_services.audit(
            user, AuditEvent.Action.EXPORT, wb.document.study, f"write-back {wb.pk} retried by hand"
        )
        transaction.on_commit(lambda: _publish_stow(wb.pk))
    return wb


def retry_generation(*, study: Study) -> list[int]:
    """Queue every pending or failed generation of ``study`` again. Returns their ids."""
    ids = list(
        ReportGeneration.objects.filter(study=study)
        .exclude(status=ReportGeneration.Status.DONE)
        .values_list("pk", flat=True)
    )
    for pk in ids:
        transaction.on_commit(lambda pk=pk: _publish_generation(pk))
    return ids


def sweep(*, stale_after_s: float = 600.0) -> tuple[int, int]:
    """Queue generations still pending/failed (older than ``stale_after_s``) and write-backs that
    are pending (older than that) or retrying and due. Returns (generations, write-backs) queued.
    Side effects: Celery tasks published; no row changes."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_after_s)
    generations = list(
        ReportGeneration.objects.exclude(status=ReportGeneration.Status.DONE)
        .filter(created_at__lte=cutoff, attempts__lt=5)
        .values_list("pk", flat=True)
    )
    due = list(
        Writeback.objects.filter(
            status=WritebackStatus.RETRYING, next_retry_at__lte=now
        ).values_list("pk", flat=True)
    ) + list(
        Writeback.objects.filter(
            status=WritebackStatus.PENDING, created_at__lte=cutoff
        ).values_list("pk", flat=True)
    )
    for pk in generations:
        _publish_generation(pk)
    for pk in due:
        _publish_stow(pk)
    return len(generations), len(due)


def panel(study: Study) -> dict[str, Any]:
    """What the exam's report panel shows: generations, documents by version, write-backs."""
    docs = list(
        ReportDocument.objects.filter(study=study)
        .select_related("writeback")
        .order_by("-version", "kind", "label")
    )
    versions: dict[int, list[ReportDocument]] = {}
    for d in docs:
        versions.setdefault(d.version, []).append(d)
    return {
        "study": study,
        "generations": list(study.report_generations.order_by("-created_at")),
        "versions": sorted(versions.items(), reverse=True),
        "latest_pdf": next((d for d in docs if d.kind == ReportKind.PDF), None),
        "failed": [
            d
            for d in docs
            if hasattr(d, "writeback") and d.writeback.status == WritebackStatus.FAILED
        ],
    }


__all__ = [
    "DICOM_KINDS",
    "backoff_s",
    "generate_reports",
    "panel",
    "report_uid",
    "retry_generation",
    "retry_writeback",
    "schedule_reports",
    "send_writeback",
    "sweep",
]
