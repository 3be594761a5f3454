"""AI findings: what the models proposed for an exam, per analysis run, with the model versions.

These rows are proposals only. Physicians' decisions (accept / edit / reject) are separate records
owned by the review app and point at these rows; nothing here carries a decision. An exam can be
analysed again (e.g. with a newer model version): each ``AnalysisRun`` keeps its own findings.

Writes are idempotent: a frame batch replaces its own ``FramePlaneFinding`` rows, the final step
replaces the run's best frames, segmentations, measurements, quality and derived findings; unique
constraints make a duplicate impossible even if a task ran twice at once.

Frame numbers are DICOM's, 1-based (as ``exams.Frame.number`` and DICOMweb ``/frames/{n}``).
Geometry is in pixels of the stored frame (x = column, y = row) and, when a calibration region
holds all points, in mm.
"""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.utils import timezone

from webapp.exams.models import Instance, Study, UltrasoundRegion


class ModelVersion(models.Model):
    """One set of weights a finding can come from (name, version and the SHA-256 of the bytes)."""

    name = models.CharField(max_length=64, help_text="e.g. planes-classifier, head-unet")
    version = models.CharField(max_length=100)
    weights_sha256 = models.CharField(max_length=64)
    weights_path = models.CharField(max_length=500, blank=True)
    task = models.CharField(max_length=100, blank=True)
    model_card = models.TextField(blank=True)
    model_card_path = models.CharField(max_length=500, blank=True)
    is_active = models.BooleanField(
        default=True, help_text="Inactive versions are kept for their findings but not used."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["name", "-created_at"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["name", "version", "weights_sha256"], name="analysis_modelversion_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.weights_sha256[:12]})"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    ANALYSING = "analysing", "Analysing frames"
    FINALIZING = "finalizing", "Measuring"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class RunStage(models.TextChoices):
    WAITING = "waiting", "Waiting for a worker"
    CLASSIFYING = "classifying", "Recognising planes"
    BEST_FRAMES = "best_frames", "Choosing best frames"
    MEASURING = "measuring", "Segmenting and measuring"
    QUALITY = "quality", "Judging image quality"
    BIOMETRY = "biometry", "Gestational age and weight"
    DONE = "done", "Done"


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.ANALYSING, RunStatus.FINALIZING)


class AnalysisRun(models.Model):
    """One analysis of an exam: its progress, outcome and the model versions it used."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="analysis_runs")
    status = models.CharField(
        max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    stage = models.CharField(max_length=12, choices=RunStage.choices, default=RunStage.WAITING)
    protocol = models.CharField(max_length=40, default="biometry")
    trigger = models.CharField(
        max_length=20, blank=True, help_text="ingest, retry, command, sweep, reanalysis"
    )
    model_versions = models.ManyToManyField(ModelVersion, blank=True, related_name="runs")
    frames_total = models.PositiveIntegerField(default=0)
    frames_done = models.PositiveIntegerField(default=0)
    frames_failed = models.PositiveIntegerField(default=0)
    batches_total = models.PositiveIntegerField(default=0)
    batches_done = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    finalize_queued_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    error = models.TextField(blank=True, help_text="Why the run failed, for people")
    publish_attempts = models.PositiveIntegerField(default=0)
    notes = models.JSONField(
        default=dict,
        blank=True,
        help_text="Models unavailable and values not computed, with reasons",
    )

    class Meta:
        ordering: ClassVar = ["-queued_at", "-id"]
        indexes: ClassVar = [models.Index(fields=["study", "-queued_at"])]

    def __str__(self) -> str:
        return f"Analysis {self.pk} of study {self.study_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES


class AnalysisBatch(models.Model):
    """A run of consecutive frames of one instance analysed by one task (the unit of redelivery)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="batches")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    first_frame = models.PositiveIntegerField(help_text="1-based, inclusive")
    last_frame = models.PositiveIntegerField(help_text="1-based, inclusive")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    frames_failed = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["run_id", "instance_id", "first_frame"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["run", "instance", "first_frame"], name="analysis_batch_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Batch {self.instance_id}:{self.first_frame}-{self.last_frame} of run {self.run_id}"

    @property
    def size(self) -> int:
        return self.last_frame - self.first_frame + 1


class FramePlaneFinding(models.Model):
    """The plane classifier's probabilities for one frame (AI proposal)."""

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="frame_planes")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    frame_number = models.PositiveIntegerField()
    probabilities = models.JSONField(
        default=dict, help_text='{"planes": {key: p}, "brain_planes": {key: p}}'
    )
    top_plane = models.CharField(max_length=40, blank=True)
    top_brain_plane = models.CharField(max_length=40, blank=True)
    top_view = models.CharField(max_length=40, blank=True)
    top_probability = models.FloatField(null=True, blank=True)
    failed = models.BooleanField(default=False)
    failure_reason = models.TextField(blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering: ClassVar = ["run_id", "instance_id", "frame_number"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["run", "instance", "frame_number"], name="analysis_frameplane_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Frame {self.frame_number} of {self.instance_id}: {self.top_plane or 'failed'}"


class BestFrameFinding(models.Model):
    """The best frame of one protocol view in the exam, and whether it looks optimal."""

    class Flag(models.TextChoices):
        OPTIMAL = "optimal", "Optimal"
        SUB_OPTIMAL = "sub_optimal", "Sub-optimal"
        ABSENT = "absent", "Missing"

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="best_frames")
    view_key = models.CharField(max_length=40, help_text="inference.planes.taxonomy view key")
    instance = models.ForeignKey(
        Instance, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    frame_number = models.PositiveIntegerField(null=True, blank=True)
    score = models.FloatField(default=0.0)
    flag = models.CharField(max_length=12, choices=Flag.choices)
    evidence = models.JSONField(default=dict, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering: ClassVar = ["run_id", "view_key"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["run", "view_key"], name="analysis_bestframe_unique")
        ]

    def __str__(self) -> str:
        return f"{self.view_key}: frame {self.frame_number} ({self.flag})"


class SegmentationFinding(models.Model):
    """A structure's mask on one frame, stored as a 1-bit PNG of the frame's size."""

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="segmentations")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    frame_number = models.PositiveIntegerField()
    structure = models.CharField(max_length=40, help_text="skull, abdomen, femur")
    mask_png = models.BinaryField(help_text="1-bit PNG, rows × columns of the frame")
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    area_px = models.PositiveIntegerField()
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["run", "instance", "frame_number", "structure"],
                name="analysis_segmentation_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.structure} mask on frame {self.frame_number} of {self.instance_id}"


class MeasurementKind(models.TextChoices):
    HC = "HC", "Head circumference"
    BPD = "BPD", "Biparietal diameter"
    OFD = "OFD", "Occipito-frontal diameter"
    CI = "CI", "Cephalic index"
    AC = "AC", "Abdominal circumference"
    APAD = "APAD", "Antero-posterior abdominal diameter"
    TAD = "TAD", "Transverse abdominal diameter"
    FL = "FL", "Femur length"


class MeasurementFinding(models.Model):
    """One AI measurement with its geometry, calibration and convention.

    ``value_mm`` / ``geometry_mm`` are null unless one calibration holds all points of the
    measurement (then ``calibration_region`` / ``calibration_source`` say which); the review page
    shows px then, never a guessed mm value.
    """

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="measurements")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    frame_number = models.PositiveIntegerField()
    view_key = models.CharField(max_length=40, blank=True)
    kind = models.CharField(max_length=6, choices=MeasurementKind.choices)
    geometry_px = models.JSONField(help_text="ellipse {cx, cy, a, b, angle} or line {points}")
    geometry_mm = models.JSONField(null=True, blank=True)
    value_px = models.FloatField()
    value_mm = models.FloatField(null=True, blank=True)
    unit = models.CharField(max_length=8, default="mm", help_text="unit of value_mm")
    calibration_source = models.CharField(max_length=20, blank=True)
    calibration_region = models.ForeignKey(
        UltrasoundRegion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    mm_per_pixel_x = models.FloatField(null=True, blank=True)
    mm_per_pixel_y = models.FloatField(null=True, blank=True)
    convention = models.CharField(max_length=100, blank=True)
    method = models.CharField(max_length=200, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering: ClassVar = ["run_id", "kind"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["run", "instance", "frame_number", "kind"],
                name="analysis_measurement_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.value_mm if self.value_mm is not None else self.value_px} {self.unit if self.value_mm is not None else 'px'}"


class QualityFinding(models.Model):
    """One Salomon 2006 criterion judged on a view's chosen frame (AI pre-fill for graders)."""

    class Verdict(models.TextChoices):
        MET = "met", "Met"
        NOT_MET = "not_met", "Not met"
        NOT_ASSESSABLE = "not_assessable", "Not assessable"

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="quality")
    view_key = models.CharField(max_length=40)
    rubric_plane = models.CharField(max_length=20, help_text="head, abdomen, femur")
    criterion_key = models.CharField(max_length=80)
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    points = models.PositiveSmallIntegerField(default=1)
    evidence = models.JSONField(default=dict, blank=True)
    rationale = models.TextField(blank=True)
    instance = models.ForeignKey(
        Instance, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    frame_number = models.PositiveIntegerField(null=True, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering: ClassVar = ["run_id", "view_key", "id"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["run", "view_key", "criterion_key"], name="analysis_quality_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.criterion_key}: {self.verdict}"


class DerivedFinding(models.Model):
    """A gestational age, fetal weight or centile, with the formula that produced it."""

    class Kind(models.TextChoices):
        GA = "GA", "Gestational age"
        EFW = "EFW", "Estimated fetal weight"
        CENTILE = "centile", "Centile"

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="derived")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    formula_key = models.CharField(max_length=80, help_text="e.g. ga.hadlock1984.hc")
    value = models.FloatField()
    unit = models.CharField(max_length=8, help_text="d (days), g, %")
    inputs = models.JSONField(default=dict, help_text="measurements used, in mm")
    formula = models.JSONField(default=dict, help_text="identity incl. reference and DICOM code")
    flags = models.JSONField(default=list, blank=True)
    display = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering: ClassVar = ["run_id", "kind", "formula_key"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["run", "formula_key"], name="analysis_derived_unique")
        ]

    def __str__(self) -> str:
        return f"{self.formula_key} = {self.value} {self.unit}"
