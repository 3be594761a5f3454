"""Exams as they arrive: patients, studies (the clinical "exam"), series, instances and frames.

Names follow DICOM. A ``Study`` is the exam a physician reviews and carries the exam status
machine. Pixel data stays in the stored DICOM file under MEDIA_ROOT; ``Frame`` rows record where
each frame's bytes lie in that file, so a cine frame is served with one seek and one read and is
never re-decoded for the DICOMweb frame route. Calibration is kept as the modality sent it
(``UltrasoundRegion`` rows) so a measurement can later pick the one region that holds all its
points.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from webapp.core.secrets import SealedTextField


class InvalidTransition(Exception):
    """An exam status change that the status machine does not allow."""


class Patient(models.Model):
    """The person scanned. Identified by Patient ID within its issuer (0010,0020 / 0010,0021)."""

    class Sex(models.TextChoices):
        FEMALE = "F", "Female"
        MALE = "M", "Male"
        OTHER = "O", "Other"
        UNKNOWN = "", "Unknown"

    patient_id = models.CharField(max_length=64, blank=True, db_index=True)
    issuer_of_patient_id = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=320, blank=True, help_text="DICOM PN, e.g. DOE^JANE")
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=1, choices=Sex.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            # Images without a patient ID (research PNG/JPEG) each get their own anonymous patient.
            models.UniqueConstraint(
                fields=["patient_id", "issuer_of_patient_id"],
                condition=~models.Q(patient_id=""),
                name="exams_patient_id_issuer_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name or 'anonymous'} ({self.patient_id or 'no ID'})"


class PacsNode(models.Model):
    """A PACS reachable over DICOMweb (QIDO-RS / WADO-RS / STOW-RS)."""

    class Auth(models.TextChoices):
        NONE = "none", "None"
        BASIC = "basic", "HTTP basic"
        BEARER = "bearer", "Bearer token"

    name = models.CharField(max_length=64, unique=True)
    dicomweb_url = models.URLField(
        max_length=500,
        help_text="Base URL of the DICOMweb service, e.g. http://pacs:8042/dicom-web",
    )
    auth_type = models.CharField(max_length=10, choices=Auth.choices, default=Auth.NONE)
    username = models.CharField(max_length=150, blank=True)
    # Encrypted at rest (webapp.core.secrets): a database dump does not give the PACS away.
    password = SealedTextField(blank=True)
    bearer_token = SealedTextField(blank=True)
    ae_title = models.CharField(max_length=16, blank=True, help_text="The PACS's DICOM AE title")
    timeout_seconds = models.PositiveIntegerField(default=60)
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class ExamSource(models.TextChoices):
    UPLOAD = "upload", "Upload"
    PACS = "pacs", "PACS pull (DICOMweb)"
    CSTORE = "cstore", "Modality C-STORE"


class ExamStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    QUEUED = "queued", "Queued for analysis"
    ANALYSING = "analysing", "Analysing"
    READY_FOR_REVIEW = "ready_for_review", "Ready for review"
    IN_REVIEW = "in_review", "In review"
    SIGNED = "signed", "Signed"
    AMENDED = "amended", "Amended"
    FAILED = "failed", "Failed"


# Allowed exam status changes. "received" may be re-queued when new images arrive, a failed exam
# may be retried, a reviewer may release an exam back to the worklist, and an amended exam is
# signed again once the amendment is complete.
EXAM_TRANSITIONS: dict[str, frozenset[str]] = {
    ExamStatus.RECEIVED: frozenset({ExamStatus.QUEUED, ExamStatus.FAILED}),
    ExamStatus.QUEUED: frozenset({ExamStatus.ANALYSING, ExamStatus.FAILED, ExamStatus.RECEIVED}),
    ExamStatus.ANALYSING: frozenset(
        {ExamStatus.READY_FOR_REVIEW, ExamStatus.FAILED, ExamStatus.QUEUED}
    ),
    ExamStatus.READY_FOR_REVIEW: frozenset(
        {ExamStatus.IN_REVIEW, ExamStatus.QUEUED, ExamStatus.FAILED}
    ),
    ExamStatus.IN_REVIEW: frozenset({ExamStatus.SIGNED, ExamStatus.READY_FOR_REVIEW}),
    ExamStatus.SIGNED: frozenset({ExamStatus.AMENDED}),
    ExamStatus.AMENDED: frozenset({ExamStatus.SIGNED}),
    ExamStatus.FAILED: frozenset({ExamStatus.QUEUED, ExamStatus.RECEIVED}),
}


class Study(models.Model):
    """One ultrasound exam (DICOM study), with the exam status machine."""

    study_instance_uid = models.CharField(max_length=64, unique=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    study_date = models.DateField(null=True, blank=True)
    study_time = models.TimeField(null=True, blank=True)
    accession_number = models.CharField(max_length=16, blank=True, db_index=True)
    study_id = models.CharField(max_length=16, blank=True, help_text="DICOM Study ID (0020,0010)")
    description = models.CharField(max_length=64, blank=True)
    referring_physician = models.CharField(max_length=320, blank=True)
    sonographer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="performed_studies",
        help_text="The sonographer who performed or sent the exam, where known.",
    )
    performing_physician = models.CharField(
        max_length=320, blank=True, help_text="As sent by the modality (0008,1050)"
    )
    operators_name = models.CharField(
        max_length=320,
        blank=True,
        help_text="As sent by the modality (0008,1070): who operated the scanner",
    )
    source = models.CharField(max_length=10, choices=ExamSource.choices)
    pacs_node = models.ForeignKey(
        PacsNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="studies"
    )
    status = models.CharField(
        max_length=20, choices=ExamStatus.choices, default=ExamStatus.RECEIVED, db_index=True
    )
    failure_reason = models.TextField(blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "studies"
        ordering: ClassVar = ["-created_at"]

    def __str__(self) -> str:
        return f"Study {self.study_instance_uid} ({self.get_status_display()})"

    def transition_to(self, new_status: str, *, reason: str = "") -> None:
        """Move the exam to ``new_status`` under a row lock; raises InvalidTransition.

        Side effects: locks and updates this study's row in its own transaction (or the
        caller's); refreshes ``self.status``, ``failure_reason`` and ``status_changed_at``.
        ``reason`` is required for ``failed`` and kept as ``failure_reason``.
        """
        if new_status not in ExamStatus.values:
            raise InvalidTransition(f"unknown exam status {new_status!r}")
        if new_status == ExamStatus.FAILED and not reason:
            raise InvalidTransition("an exam can only be marked failed with a reason")
        with transaction.atomic():
            locked = Study.objects.select_for_update().get(pk=self.pk)
            allowed = EXAM_TRANSITIONS[locked.status]
            if new_status not in allowed:
                raise InvalidTransition(
                    f"exam {locked.study_instance_uid} cannot go from "
                    f"{locked.status!r} to {new_status!r} "
                    f"(allowed: {', '.join(sorted(allowed)) or 'none'})"
                )
            locked.status = new_status
            locked.failure_reason = reason if new_status == ExamStatus.FAILED else ""
            locked.status_changed_at = timezone.now()
            locked.save(update_fields=["status", "failure_reason", "status_changed_at"])
        self.status = locked.status
        self.failure_reason = locked.failure_reason
        self.status_changed_at = locked.status_changed_at


class Series(models.Model):
    series_instance_uid = models.CharField(max_length=64, unique=True)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    modality = models.CharField(max_length=16, blank=True)
    series_number = models.IntegerField(null=True, blank=True)
    description = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "series"
        ordering: ClassVar = ["series_number", "id"]

    def __str__(self) -> str:
        return f"Series {self.series_number} {self.modality} {self.description}".strip()


class CalibrationSource(models.TextChoices):
    US_REGIONS = "us_regions", "Sequence of Ultrasound Regions"
    PIXEL_SPACING = "pixel_spacing", "Pixel Spacing"
    USER = "user", "Entered by a user"
    NONE = "none", "None (pixels only)"


class Instance(models.Model):
    """One stored DICOM object (an image or a cine loop) and the facts needed to serve it."""

    sop_instance_uid = models.CharField(max_length=64, unique=True)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_class_uid = models.CharField(max_length=64)
    instance_number = models.IntegerField(null=True, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    number_of_frames = models.PositiveIntegerField(default=1)
    samples_per_pixel = models.PositiveSmallIntegerField(default=1)
    photometric_interpretation = models.CharField(max_length=32)
    planar_configuration = models.PositiveSmallIntegerField(null=True, blank=True)
    bits_allocated = models.PositiveSmallIntegerField()
    bits_stored = models.PositiveSmallIntegerField()
    pixel_representation = models.PositiveSmallIntegerField(default=0)
    frame_time_ms = models.FloatField(
        null=True, blank=True, help_text="Frame Time (0018,1063): ms between frames, for playback"
    )
    frame_time_vector_ms = models.JSONField(
        null=True, blank=True, help_text="Frame Time Vector (0018,1065): ms before each frame"
    )
    recommended_frame_rate = models.FloatField(null=True, blank=True)
    acquisition_datetime = models.DateTimeField(null=True, blank=True)
    image_type = models.CharField(max_length=200, blank=True)
    original_filename = models.CharField(max_length=255, blank=True)
    converted_from = models.CharField(
        max_length=10,
        blank=True,
        help_text="'png'/'jpeg' when the site wrapped a non-DICOM image as Secondary Capture",
    )
    file = models.FileField(max_length=300, help_text="The stored DICOM file, under MEDIA_ROOT")
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.BigIntegerField()
    pixel_data_offset = models.BigIntegerField(
        help_text="File offset of the Pixel Data value (first item tag when encapsulated)"
    )
    calibration_source = models.CharField(
        max_length=20, choices=CalibrationSource.choices, default=CalibrationSource.NONE
    )
    received_at = models.DateTimeField(default=timezone.now)
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="received_instances",
    )

    class Meta:
        ordering: ClassVar = ["instance_number", "id"]

    def __str__(self) -> str:
        return f"Instance {self.sop_instance_uid} ({self.number_of_frames} frames)"

    @property
    def is_multiframe(self) -> bool:
        return self.number_of_frames > 1


class Frame(models.Model):
    """Where one frame's pixel bytes lie in the stored file, and when it plays in the cine.

    ``byte_ranges`` is a list of ``[offset, length]`` pairs in the file: one pair for native
    (uncompressed) pixel data and for a compressed frame in one fragment, several when a
    compressed frame was split into fragments. Concatenated, they are the frame's bytes as stored.
    """

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="frames")
    number = models.PositiveIntegerField(help_text="1-based, as in DICOMweb /frames/{n}")
    byte_ranges = models.JSONField()
    time_offset_ms = models.FloatField(
        null=True, blank=True, help_text="Time from the first frame, from Frame Time (Vector)"
    )

    class Meta:
        ordering: ClassVar = ["instance_id", "number"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["instance", "number"], name="exams_frame_unique")
        ]

    def __str__(self) -> str:
        return f"Frame {self.number} of {self.instance_id}"


class UltrasoundRegion(models.Model):
    """One item of the Sequence of Ultrasound Regions (0018,6011), as the modality sent it.

    Bounds are inclusive pixel coordinates (RegionLocationMinX0 … MaxY1). PhysicalUnits 3 means
    cm; PhysicalDelta is physical units per pixel. ``first_frame``/``last_frame`` (1-based,
    inclusive) say which frames the region applies to; both empty means every frame.
    """

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="us_regions")
    index = models.PositiveSmallIntegerField(help_text="0-based item index in the sequence")
    x0 = models.IntegerField()
    y0 = models.IntegerField()
    x1 = models.IntegerField()
    y1 = models.IntegerField()
    spatial_format = models.PositiveSmallIntegerField(null=True, blank=True)
    data_type = models.PositiveSmallIntegerField(null=True, blank=True)
    flags = models.PositiveIntegerField(null=True, blank=True)
    physical_units_x = models.PositiveSmallIntegerField(null=True, blank=True)
    physical_units_y = models.PositiveSmallIntegerField(null=True, blank=True)
    physical_delta_x = models.FloatField(null=True, blank=True)
    physical_delta_y = models.FloatField(null=True, blank=True)
    reference_pixel_x0 = models.IntegerField(null=True, blank=True)
    reference_pixel_y0 = models.IntegerField(null=True, blank=True)
    first_frame = models.PositiveIntegerField(null=True, blank=True)
    last_frame = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["instance_id", "index"]

    def __str__(self) -> str:
        return (
            f"Region {self.index} of {self.instance_id} ({self.x0},{self.y0})-({self.x1},{self.y1})"
        )


class Calibration(models.Model):
    """The calibration an instance's measurements use, and where it came from.

    For ``us_regions`` the per-region deltas live in ``UltrasoundRegion``; this row records the
    source. For ``pixel_spacing`` and ``user`` it holds mm per pixel. A user calibration (for a
    non-DICOM image) records who entered it and when, and is never mistaken for a DICOM one.
    """

    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, related_name="calibration")
    source = models.CharField(max_length=20, choices=CalibrationSource.choices)
    mm_per_pixel_x = models.FloatField(null=True, blank=True)
    mm_per_pixel_y = models.FloatField(null=True, blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    entered_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"Calibration of {self.instance_id}: {self.source}"


class IngestOutcome(models.TextChoices):
    STORED = "stored", "Stored"
    DUPLICATE = "duplicate", "Already received"
    REJECTED = "rejected", "Rejected"


class IngestEvent(models.Model):
    """One file offered to the site by any route, and what became of it (rejections included)."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    route = models.CharField(max_length=10, choices=ExamSource.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    peer = models.CharField(
        max_length=200, blank=True, help_text="Calling AE title / PACS node / client address"
    )
    batch_id = models.UUIDField(null=True, blank=True, db_index=True)
    file_name = models.CharField(max_length=500, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=IngestOutcome.choices)
    reason = models.TextField(blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.SET_NULL)
    instance = models.ForeignKey(Instance, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering: ClassVar = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.file_name}: {self.outcome} {self.reason}".strip()


class AuditEvent(models.Model):
    """Who read or changed which patient data, when and from where. Append-only."""

    class Action(models.TextChoices):
        VIEW = "view", "View"
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"
        EXPORT = "export", "Export"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(max_length=150, blank=True, help_text="Kept if the user goes")
    action = models.CharField(max_length=10, choices=Action.choices)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=100)
    study_instance_uid = models.CharField(max_length=64, blank=True, db_index=True)
    detail = models.TextField(blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    path = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering: ClassVar = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.object_type} {self.object_id}"
