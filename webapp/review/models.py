"""Physician decisions on an exam, kept apart from the AI findings they judge.

Nothing here overwrites an AI finding, and decision rows are never updated: every decision on a
finding is a new ``FindingDecision`` row with the next ``version`` (the latest one counts), so the
history of who accepted, edited or rejected what, and when, is the table itself. The unique
(study, finding, version) constraint is the optimistic-concurrency check: two reviewers who both
saw version 3 cannot both write version 4 — the second one is told who changed it and when.

A signed exam is immutable (the services refuse changes); a later change opens an ``Amendment``
with a reason, changes made under it point to it, and signing again closes it.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from webapp.exams.models import Instance, Study


class FindingType(models.TextChoices):
    """The kinds of finding a physician decides on (AI rows in webapp.analysis, or their own)."""

    PLANE = "plane", "Standard plane (best frame)"
    MEASUREMENT = "measurement", "Measurement"
    QUALITY = "quality", "Quality criterion"
    SEGMENTATION = "segmentation", "Segmentation"
    PHYSICIAN_MEASUREMENT = "physician_measurement", "Physician's measurement"


class DecisionAction(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    EDITED = "edited", "Edited"
    REJECTED = "rejected", "Rejected"


class MeasurementKind(models.TextChoices):
    HC = "HC", "Head circumference"
    BPD = "BPD", "Biparietal diameter"
    OFD = "OFD", "Occipito-frontal diameter"
    AC = "AC", "Abdominal circumference"
    FL = "FL", "Femur length"


class Shape(models.TextChoices):
    ELLIPSE = "ellipse", "Ellipse"
    LENGTH = "length", "Length (two points)"


class Amendment(models.Model):
    """A change to a signed exam: opened with a reason, closed when the exam is signed again."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="amendments")
    reason = models.TextField()
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    amends = models.ForeignKey(
        "SignOff",
        on_delete=models.PROTECT,
        related_name="amendments",
        help_text="The sign-off whose content this amendment changes",
    )
    closed_by = models.OneToOneField(
        "SignOff",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="closes",
        help_text="The sign-off that ended this amendment",
    )
    changes = models.JSONField(
        default=list, help_text="What changed: one entry per change made under this amendment"
    )

    class Meta:
        ordering: ClassVar = ["opened_at", "id"]

    def __str__(self) -> str:
        return f"Amendment of study {self.study_id} by {self.opened_by_id}: {self.reason[:40]}"


class FindingDecision(models.Model):
    """One physician decision on one finding. Append-only: the highest version is current.

    ``finding_type`` + ``finding_id`` name the judged row (an analysis finding, or a
    ``PhysicianMeasurement`` for ``physician_measurement``). ``ai_snapshot`` keeps what the AI
    proposed at the time, so the record stands on its own. For ``edited`` the physician's value
    sits in ``edited_*`` beside the AI's: geometry in px (and mm when one calibration region holds
    all points), the value, the calibration used and the GA/EFW/centiles recomputed from it.
    """

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="decisions")
    finding_type = models.CharField(max_length=24, choices=FindingType.choices)
    finding_id = models.BigIntegerField(help_text="Primary key of the judged row (see the FKs)")
    # Exactly one of these points at the judged row (checked by a constraint); PROTECT: an AI
    # finding that a physician has decided on cannot silently disappear.
    best_frame = models.ForeignKey(
        "analysis.BestFrameFinding",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="decisions",
    )
    measurement = models.ForeignKey(
        "analysis.MeasurementFinding",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="decisions",
    )
    quality = models.ForeignKey(
        "analysis.QualityFinding",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="decisions",
    )
    segmentation = models.ForeignKey(
        "analysis.SegmentationFinding",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="decisions",
    )
    physician_measurement = models.ForeignKey(
        "PhysicianMeasurement",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="decisions",
    )
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=10, choices=DecisionAction.choices)
    ai_snapshot = models.JSONField(default=dict, blank=True)
    edited_label = models.CharField(max_length=64, blank=True)
    edited_geometry_px = models.JSONField(null=True, blank=True)
    edited_geometry_mm = models.JSONField(null=True, blank=True)
    edited_value_px = models.FloatField(null=True, blank=True)
    edited_value_mm = models.FloatField(null=True, blank=True)
    calibration = models.JSONField(
        null=True, blank=True, help_text="Source and region of the mm values, or null for px only"
    )
    derived = models.JSONField(null=True, blank=True, help_text="GA/EFW/centiles recomputed")
    comment = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="finding_decisions"
    )
    decided_at = models.DateTimeField(default=timezone.now)
    amendment = models.ForeignKey(
        Amendment, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions"
    )

    class Meta:
        ordering: ClassVar = ["study_id", "finding_type", "finding_id", "version"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["study", "finding_type", "finding_id", "version"],
                name="review_decision_version_unique",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(finding_type="plane", best_frame__isnull=False)
                    | models.Q(finding_type="measurement", measurement__isnull=False)
                    | models.Q(finding_type="quality", quality__isnull=False)
                    | models.Q(finding_type="segmentation", segmentation__isnull=False)
                    | models.Q(
                        finding_type="physician_measurement", physician_measurement__isnull=False
                    )
                ),
                name="review_decision_points_at_its_finding",
            ),
        ]
        indexes: ClassVar = [models.Index(fields=["study", "finding_type", "finding_id"])]

    def __str__(self) -> str:
        return f"{self.finding_type} {self.finding_id} v{self.version}: {self.action}"


#: FindingDecision field holding the foreign key for each finding type.
FINDING_FK = {
    FindingType.PLANE: "best_frame",
    FindingType.MEASUREMENT: "measurement",
    FindingType.QUALITY: "quality",
    FindingType.SEGMENTATION: "segmentation",
    FindingType.PHYSICIAN_MEASUREMENT: "physician_measurement",
}


class PhysicianMeasurement(models.Model):
    """A measurement a physician drew because the AI missed it. Never edited in place:
    later edits and withdrawal are ``FindingDecision`` rows of type ``physician_measurement``."""

    study = models.ForeignKey(
        Study, on_delete=models.PROTECT, related_name="physician_measurements"
    )
    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="+")
    frame_number = models.PositiveIntegerField(help_text="1-based, as in DICOMweb")
    kind = models.CharField(max_length=8, choices=MeasurementKind.choices)
    shape = models.CharField(max_length=10, choices=Shape.choices)
    convention = models.CharField(max_length=40, blank=True)
    geometry_px = models.JSONField()
    geometry_mm = models.JSONField(null=True, blank=True)
    value_px = models.FloatField()
    value_mm = models.FloatField(null=True, blank=True)
    calibration = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    amendment = models.ForeignKey(
        Amendment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering: ClassVar = ["study_id", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} on frame {self.frame_number} of {self.instance_id} by {self.created_by_id}"


class PlaneRelabel(models.Model):
    """A physician's plane label for one frame, replacing the AI's for review purposes.

    Append-only per frame; the highest version is current (same concurrency rule as decisions).
    """

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="plane_relabels")
    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="+")
    frame_number = models.PositiveIntegerField(help_text="1-based, as in DICOMweb")
    version = models.PositiveIntegerField()
    ai_label = models.CharField(max_length=64, blank=True)
    new_label = models.CharField(max_length=64, help_text="A view key of the plane taxonomy")
    comment = models.TextField(blank=True)
    relabelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    relabelled_at = models.DateTimeField(default=timezone.now)
    amendment = models.ForeignKey(
        Amendment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering: ClassVar = ["study_id", "instance_id", "frame_number", "version"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["instance", "frame_number", "version"], name="review_relabel_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"frame {self.frame_number} of {self.instance_id} → {self.new_label} v{self.version}"


class DatingBasis(models.TextChoices):
    """How the pregnancy was dated (the source of the GA from dates)."""

    LMP = "lmp", "Last menstrual period"
    CRL_SCAN = "crl_scan", "First-trimester scan (CRL)"
    ASSISTED_CONCEPTION = "assisted_conception", "Assisted conception date"
    OTHER = "other", "Other"


class GestationalDating(models.Model):
    """The gestational age from dates of an exam: what size centiles are placed at.

    A GA estimated from this exam's own measurements would make its centiles circular, so the
    physician enters the GA known from dates (LMP, an earlier CRL scan, assisted conception…).
    ``ga_days`` is the GA on the exam's study date in whole days; ``lmp_date`` is kept when the GA
    was worked out from it. Append-only per exam; the highest version is current (same
    concurrency rule as decisions and relabels).
    """

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="datings")
    version = models.PositiveIntegerField()
    basis = models.CharField(max_length=24, choices=DatingBasis.choices)
    lmp_date = models.DateField(
        null=True, blank=True, help_text="First day of the last menstrual period, when given"
    )
    ga_days = models.PositiveIntegerField(help_text="GA on the exam's study date, whole days")
    comment = models.TextField(blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    entered_at = models.DateTimeField(default=timezone.now)
    amendment = models.ForeignKey(
        Amendment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering: ClassVar = ["study_id", "version"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["study", "version"], name="review_dating_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"GA {self.ga_weeks_days} ({self.basis}) of study {self.study_id} v{self.version}"

    @property
    def ga_weeks_days(self) -> str:
        """The GA as completed weeks and days, e.g. ``20w3d``."""
        return f"{self.ga_days // 7}w{self.ga_days % 7}d"


class SignOff(models.Model):
    """A physician's signature on the exam's content as summarised at that moment.

    ``summary`` is the snapshot shown in the sign-off dialog; ``content_hash`` is the SHA-256 of
    its canonical JSON, so a later reader can tell the signed content was not altered.
    """

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="signoffs")
    sequence = models.PositiveIntegerField(
        help_text="1 for the first signature, 2 after an amendment…"
    )
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(default=timezone.now)
    summary = models.JSONField()
    content_hash = models.CharField(max_length=64)

    class Meta:
        ordering: ClassVar = ["study_id", "sequence"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["study", "sequence"], name="review_signoff_sequence_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Sign-off {self.sequence} of study {self.study_id} by {self.signed_by_id}"
