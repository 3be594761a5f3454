"""``manage.py dicom_receiver``: a DICOM Storage SCP (C-STORE) feeding the ingest service.

Accepts US Image, US Multi-frame Image and Secondary Capture (single and multi-frame) in the
common transfer syntaxes, plus C-ECHO. Each dataset goes through ``services.ingest_file``; a
rejected dataset gets a failure status (0xC000, "cannot understand") with the reason in the
Error Comment and in the log. Studies that received new images are queued for analysis when the
association ends, so a 100-image exam is analysed once, not 100 times.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connections
from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from webapp.exams import services
from webapp.exams.models import ExamSource

log = logging.getLogger("webapp.exams.receiver")

STORAGE_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image Storage",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame Image Storage",
    "1.2.840.10008.5.1.4.1.1.6": "Ultrasound Image Storage (Retired)",
    "1.2.840.10008.5.1.4.1.1.3": "Ultrasound Multi-frame Image Storage (Retired)",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image Storage",
}
TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
]
STATUS_SUCCESS = 0x0000
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_OUT_OF_RESOURCES = 0xA700


class Command(BaseCommand):
    help = "Run the DICOM C-STORE receiver (Storage SCP) until interrupted."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=settings.DICOM_PORT)
        parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
        parser.add_argument("--ae-title", default=settings.DICOM_AE_TITLE)
        parser.add_argument(
            "--no-analysis",
            action="store_true",
            help="store only; do not queue received exams for analysis (archive backfills)",
        )

    def handle(
        self, *args: Any, port: int, host: str, ae_title: str, no_analysis: bool, **options: Any
    ) -> None:
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=ae_title)
        ae.maximum_pdu_size = 0  # unlimited: cines are large
        ae.add_supported_context(Verification)
        for uid in STORAGE_CLASSES:
            ae.add_supported_context(uid, TRANSFER_SYNTAXES)
        removed = services.remove_stale_incoming()
        if removed:
            log.info("removed %d stale spool file(s) left by an earlier crash", removed)
        receiver = Receiver(queue_analysis=not no_analysis)
        handlers = [
            (evt.EVT_C_STORE, receiver.on_store),
            (evt.EVT_RELEASED, receiver.on_association_end),
            (evt.EVT_ABORTED, receiver.on_association_end),
            (evt.EVT_CONN_CLOSE, receiver.on_association_end),
        ]
        try:
            server = ae.start_server((host, port), block=False, evt_handlers=handlers)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from exc
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        log.info("DICOM receiver %s listening on %s:%d", ae_title, host, port)
        self.stdout.write(f"DICOM receiver {ae_title} listening on {host}:{port}", ending="\n")
        self.stdout.flush()
        try:
            stop.wait()
        finally:
            server.shutdown()
            connections.close_all()
            log.info("DICOM receiver stopped")


class Receiver:
    """C-STORE handling; one pynetdicom thread per association."""

    def __init__(self, *, queue_analysis: bool = True) -> None:
        self._queue_analysis = queue_analysis
        self._pending: dict[int, set[int]] = {}
        self._lock = threading.Lock()

    def on_store(self, event: Any) -> Dataset | int:
        close_old_connections()
        assoc = event.assoc
        calling = (
            assoc.requestor.ae_title.strip()
            if hasattr(assoc.requestor.ae_title, "strip")
            else str(assoc.requestor.ae_title)
        )
        peer = f"{calling}@{assoc.requestor.address}"
        sop_uid = str(event.request.AffectedSOPInstanceUID or "")
        name = f"{calling}:{sop_uid or 'unknown'}"
        try:
            data = event.encoded_dataset(include_meta=True)
        except Exception as exc:  # malformed P-DATA: nothing to store
            return self._failure(name, peer, f"the dataset cannot be read ({exc})")
        try:
            result = services.ingest_file(
                source=data, file_name=name, route=ExamSource.CSTORE, peer=peer, queue=False
            )
        except Exception as exc:  # database or disk trouble: the sender should retry
            log.exception("C-STORE %s from %s failed", name, peer)
            status = Dataset()
            status.Status = STATUS_OUT_OF_RESOURCES
            status.ErrorComment = f"storage failed: {exc}"[:64]
            return status
        finally:
            close_old_connections()
        if result.outcome == "rejected":
            status = Dataset()
            status.Status = STATUS_CANNOT_UNDERSTAND
            status.ErrorComment = result.reason[:64]
            log.warning(
                "C-STORE %s from %s rejected (0x%04X): %s",
                name,
                peer,
                STATUS_CANNOT_UNDERSTAND,
                result.reason,
            )
            return status
        if result.outcome == "stored" and result.study_id is not None and self._queue_analysis:
            with self._lock:
                self._pending.setdefault(id(assoc), set()).add(result.study_id)
        log.info("C-STORE %s from %s: %s", name, peer, result.outcome)
        return STATUS_SUCCESS

    def _failure(self, name: str, peer: str, reason: str) -> Dataset:
        services.record_rejection(name, reason, route=ExamSource.CSTORE, peer=peer)
        status = Dataset()
        status.Status = STATUS_CANNOT_UNDERSTAND
        status.ErrorComment = reason[:64]
        log.warning("C-STORE %s from %s rejected: %s", name, peer, reason)
        return status

    def on_association_end(self, event: Any) -> None:
        with self._lock:
            study_ids = self._pending.pop(id(event.assoc), set())
        try:
            for study_id in sorted(study_ids):
                services.queue_analysis(study_id)
        finally:
            close_old_connections()
