"""Supervisor grading of trainee sonographers' exams against a versioned per-plane rubric.

A ``Rubric`` version is frozen once a grade uses it: admins change the rubric by creating a new
version (Django admin action), so every ``Grade`` keeps the wording and points it was made with.
A grade is written whole at submission (no drafts), so a half-graded exam never exists.
AI verdicts are copied into each ``CriterionGrade`` (verdict, evidence, rationale) at grading
time: the record stands on its own even if the exam is analysed again later.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from webapp.exams.models import Instance, Study


class RubricFrozen(Exception):
    """A rubric version already used by a grade was about to change (create a new version)."""


class Rubric(models.Model):
    """One version of a grading rubric (e.g. Salomon 2006 v1)."""

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    active = models.BooleanField(
        default=True, help_text="New grades use the highest active version of the rubric."
    )
    reference = models.TextField(blank=True)
    note = models.TextField(blank=True, help_text="What changed from the previous version")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["name", "-version"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["name", "version"], name="teaching_rubric_version")
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def is_used(self) -> bool:
        return self.pk is not None and self.grades.exists()

    @property
    def max_points(self) -> int:
        return sum(c.points for c in self.criteria.all())


class RubricCriterion(models.Model):
    """One criterion of a rubric version. ``plane`` is head / abdomen / femur, or ``exam`` for
    the completeness item of a protocol (``protocol`` names it)."""

    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="criteria")
    plane = models.CharField(max_length=20)
    key = models.CharField(max_length=80, help_text="Stable key, e.g. head.symmetric")
    wording = models.CharField(max_length=300)
    points = models.PositiveSmallIntegerField(default=1)
    order = models.PositiveSmallIntegerField(default=0)
    protocol = models.CharField(
        max_length=40, blank=True, help_text="For the exam-completeness item: its protocol"
    )

    class Meta:
        ordering: ClassVar = ["rubric_id", "order", "id"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["rubric", "key"], name="teaching_criterion_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.rubric})"

    def save(self, *args: object, **kwargs: object) -> None:
        # Graded history must keep the exact criteria it was graded against.
        if self.rubric_id and Grade.objects.filter(rubric_id=self.rubric_id).exists():
            raise RubricFrozen(
                f"{self.rubric} is used by grades; create a new version to change its criteria"
            )
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object):  # type: ignore[override]
        if self.rubric_id and Grade.objects.filter(rubric_id=self.rubric_id).exists():
            raise RubricFrozen(
                f"{self.rubric} is used by grades; create a new version to change its criteria"
            )
        return super().delete(*args, **kwargs)  # type: ignore[arg-type]


class GradeRound(models.TextChoices):
    FIRST = "1", "First grading"
    SECOND = "2", "Second grading"
    ADJUDICATION = "adjudication", "Adjudication"


class Grade(models.Model):
    """One supervisor's grading of one exam (first, second, or the third supervisor's
    adjudication of the criteria the first two disagreed on)."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="grades")
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="grades_given"
    )
    trainee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="grades_received",
        help_text="The exam's sonographer when graded",
    )
    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="grades")
    round = models.CharField(max_length=12, choices=GradeRound.choices)
    protocol = models.CharField(max_length=40, blank=True)
    comment = models.TextField(blank=True)
    submitted_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering: ClassVar = ["-submitted_at", "-id"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["study", "supervisor"], name="teaching_grade_once"),
            models.UniqueConstraint(fields=["study", "round"], name="teaching_grade_round"),
        ]

    def __str__(self) -> str:
        return f"Grade {self.pk} of study {self.study_id} ({self.get_round_display()})"


class GradeVerdict(models.TextChoices):
    MET = "met", "Met"
    NOT_MET = "not_met", "Not met"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class CriterionGrade(models.Model):
    """The supervisor's verdict on one criterion, beside the AI's pre-filled verdict."""

    grade = models.ForeignKey(Grade, on_delete=models.CASCADE, related_name="criteria")
    criterion = models.ForeignKey(RubricCriterion, on_delete=models.PROTECT, related_name="+")
    instance = models.ForeignKey(
        Instance, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    frame_number = models.PositiveIntegerField(null=True, blank=True)
    verdict = models.CharField(max_length=16, choices=GradeVerdict.choices)
    ai_verdict = models.CharField(
        max_length=16, blank=True, help_text="met / not_met / not_assessable, blank: no AI verdict"
    )
    ai_evidence = models.JSONField(default=dict, blank=True)
    ai_rationale = models.TextField(blank=True)
    overridden = models.BooleanField(
        default=False, help_text="The supervisor's verdict differs from the AI's met / not met"
    )
    comment = models.TextField(blank=True)

    class Meta:
        ordering: ClassVar = ["grade_id", "criterion__order", "id"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["grade", "criterion"], name="teaching_criterion_once")
        ]

    def __str__(self) -> str:
        return f"{self.criterion.key}: {self.verdict}"
