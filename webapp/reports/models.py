"""Report documents of signed exams and their write-back to the PACS.

Each sign-off (the first signature, and each signature that closes an amendment) produces one
version of every document (``version`` = the sign-off's sequence). Documents are never replaced:
a new version points at the one it ``supersedes``, and the old file stays downloadable.
``ReportGeneration`` records whether building the documents of a sign-off worked; ``Writeback``
is the per-object STOW-RS status the exam page shows (pending → sent, or retrying → failed with
the last error and admins told).
"""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.utils import timezone

from webapp.exams.models import PacsNode, Study


class ReportKind(models.TextChoices):
    PDF = "pdf", "PDF report"
    SR5000 = "sr5000", "DICOM SR, OB-GYN report (TID 5000)"
    SR1500 = "sr1500", "DICOM SR, measurement report (TID 1500)"
    SEG = "seg", "DICOM SEG (masks)"
    KEY_IMAGE = "key-image", "Key image (secondary capture)"
    DERIVED_IMAGE = "derived-image", "Segmented frame (derived image)"


#: Kinds that are DICOM objects and go to the PACS.
DICOM_KINDS = (
    ReportKind.SR5000,
    ReportKind.SR1500,
    ReportKind.SEG,
    ReportKind.KEY_IMAGE,
    ReportKind.DERIVED_IMAGE,
)


class ReportGeneration(models.Model):
    """Building the documents of one sign-off: pending, done or failed (with why)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="report_generations")
    signoff = models.OneToOneField(
        "review.SignOff", on_delete=models.PROTECT, related_name="report_generation"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["study_id", "-created_at"]

    def __str__(self) -> str:
        return f"Reports of sign-off {self.signoff_id}: {self.status}"


class ReportDocument(models.Model):
    """One generated file (PDF or DICOM object) of one report version."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="report_documents")
    signoff = models.ForeignKey(
        "review.SignOff", on_delete=models.PROTECT, related_name="report_documents"
    )
    kind = models.CharField(max_length=16, choices=ReportKind.choices)
    label = models.CharField(
        max_length=80, blank=True, help_text="Which one, for kinds with several per report"
    )
    version = models.PositiveIntegerField(help_text="The sign-off sequence it documents")
    file = models.FileField(max_length=300, upload_to="reports/")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    content_type = models.CharField(max_length=80)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True, db_index=True)
    series_instance_uid = models.CharField(max_length=64, blank=True)
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["study_id", "-version", "kind", "label"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["study", "kind", "label", "version"], name="reports_document_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.label} v{self.version} of study {self.study_id}"

    @property
    def is_dicom(self) -> bool:
        return self.kind in DICOM_KINDS


class WritebackStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    RETRYING = "retrying", "Retrying"
    FAILED = "failed", "Failed"
    NO_PACS = "no_pacs", "No PACS configured"


class Writeback(models.Model):
    """STOW-RS of one DICOM document to the exam's PACS: status, attempts, last error, next try."""

    document = models.OneToOneField(
        ReportDocument, on_delete=models.PROTECT, related_name="writeback"
    )
    pacs_node = models.ForeignKey(
        PacsNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dicomweb_url = models.CharField(max_length=500, blank=True)
    status = models.CharField(
        max_length=10, choices=WritebackStatus.choices, default=WritebackStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    admins_notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When admins were told the write-back gave up"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["document_id"]

    def __str__(self) -> str:
        return f"Write-back of {self.document_id}: {self.status} ({self.attempts} attempts)"
