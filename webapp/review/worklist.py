"""The worklist query: one page of exams with analysis progress, plane completeness and flags.

Built for 10,000+ exams: the page of studies is one query (patient and sonographer joined), the
count is one more, and everything per row (latest analysis run, best frames, measurements,
calibration) is read for the page's exams only, one query per table — never one per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet

from inference.planes import taxonomy
from webapp.analysis.models import (
    AnalysisRun,
    BestFrameFinding,
    MeasurementFinding,
    RunStatus,
)
from webapp.exams.models import ExamStatus, Instance, Study

PAGE_SIZE = 50
LOW_CONFIDENCE = 0.5
SORTS = {
    "date": ("study_date", "created_at", "id"),
    "-date": ("-study_date", "-created_at", "-id"),
    "patient": ("patient__name", "id"),
    "-patient": ("-patient__name", "-id"),
    "status": ("status", "-created_at", "-id"),
    "sonographer": ("sonographer__username", "-created_at", "-id"),
    "waiting": ("status_changed_at", "id"),
}
NEEDS_REVIEW = (ExamStatus.READY_FOR_REVIEW, ExamStatus.IN_REVIEW, ExamStatus.AMENDED)
STATUS_FILTERS = {
    "": None,
    "needs_review": NEEDS_REVIEW,
    "signed": (ExamStatus.SIGNED, ExamStatus.AMENDED),
    **{s: (s,) for s in ExamStatus.values},
}


def visible_studies(user: Any) -> QuerySet[Study]:
    """Exams ``user`` may see: sonographers their own (performed or sent by them), obstetricians
    and supervisors all; anyone else none."""
    studies = Study.objects.all()
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return studies.none()
    if user.is_superuser or user.role in ("obstetrician", "supervisor"):
        return studies
    if user.role == "sonographer":
        sent = Instance.objects.filter(series__study=OuterRef("pk"), received_by=user)
        return studies.filter(Q(sonographer=user) | Exists(sent))
    return studies.none()


@dataclass
class Row:
    study: Study
    run: AnalysisRun | None = None
    protocol: str = "biometry"
    planes_found: int = 0
    planes_required: int = 0
    planes_missing: list[str] = field(default_factory=list)
    sub_optimal: int = 0
    low_confidence: int = 0
    missing_calibration: bool = False

    @property
    def progress(self) -> dict[str, Any] | None:
        run = self.run
        if run is None:
            return None
        return {
            "run": run.pk,
            "status": run.status,
            "stage": run.get_stage_display(),
            "frames_done": run.frames_done,
            "frames_total": run.frames_total,
            "active": run.is_active,
            "error": run.error,
        }


def filtered(user: Any, *, status: str = "", q: str = "", sort: str = "-date") -> QuerySet[Study]:
    studies = visible_studies(user).select_related("patient", "sonographer")
    wanted = STATUS_FILTERS.get(status)
    if wanted:
        studies = studies.filter(status__in=wanted)
    q = q.strip()
    if q:
        studies = studies.filter(
            Q(patient__name__icontains=q)
            | Q(patient__patient_id__icontains=q)
            | Q(accession_number__icontains=q)
        )
    return studies.order_by(*SORTS.get(sort, SORTS["-date"]))


def page_of(
    user: Any, *, status: str = "", q: str = "", sort: str = "-date", page: Any = 1
) -> tuple[Page, list[Row]]:
    """One page of the worklist and its rows with progress, completeness and flags. Read-only."""
    paginator = Paginator(filtered(user, status=status, q=q, sort=sort), PAGE_SIZE)
    current = paginator.get_page(page)
    rows = [Row(study) for study in current.object_list]
    annotate_rows(rows)
    return current, rows


def latest_runs(study_ids: list[int]) -> dict[int, AnalysisRun]:
    """Newest run per study (a handful of rows per exam at most; one query)."""
    runs: dict[int, AnalysisRun] = {}
    for run in AnalysisRun.objects.filter(study_id__in=study_ids).order_by(
        "study_id", "-queued_at", "-id"
    ):
        runs.setdefault(run.study_id, run)
    return runs


def annotate_rows(rows: list[Row]) -> None:
    ids = [r.study.pk for r in rows]
    if not ids:
        return
    runs = latest_runs(ids)
    done_ids = [run.pk for run in runs.values() if run.status == RunStatus.DONE]
    flags: dict[int, dict[str, str]] = {}
    for run_id, view, flag in BestFrameFinding.objects.filter(run_id__in=done_ids).values_list(
        "run_id", "view_key", "flag"
    ):
        flags.setdefault(run_id, {})[view] = flag
    low: dict[int, int] = {}
    no_mm: set[int] = set()
    for run_id, confidence, value_mm in MeasurementFinding.objects.filter(
        run_id__in=done_ids
    ).values_list("run_id", "confidence", "value_mm"):
        if confidence is not None and confidence < LOW_CONFIDENCE:
            low[run_id] = low.get(run_id, 0) + 1
        if value_mm is None:
            no_mm.add(run_id)
    uncalibrated = set(
        Instance.objects.filter(series__study_id__in=ids, calibration_source="none")
        .values_list("series__study_id", flat=True)
        .distinct()
    )
    for row in rows:
        row.run = runs.get(row.study.pk)
        row.missing_calibration = row.study.pk in uncalibrated
        if row.run is None:
            continue
        row.protocol = row.run.protocol
        try:
            required = [v.key for v in taxonomy.protocol(row.run.protocol)]
        except ValueError:
            required = []
        row.planes_required = len(required)
        if row.run.status != RunStatus.DONE:
            continue
        got = flags.get(row.run.pk, {})
        row.planes_found = sum(got.get(v) in ("optimal", "sub_optimal") for v in required)
        row.planes_missing = [v for v in required if got.get(v) not in ("optimal", "sub_optimal")]
        row.sub_optimal = sum(got.get(v) == "sub_optimal" for v in required)
        row.low_confidence = low.get(row.run.pk, 0)
        row.missing_calibration = row.missing_calibration or row.run.pk in no_mm


def next_for_review(user: Any, *, after: int | None = None) -> Study | None:
    """The exam waiting longest for review (skipping ``after``), or None."""
    studies = visible_studies(user).filter(status=ExamStatus.READY_FOR_REVIEW)
    if after is not None:
        studies = studies.exclude(pk=after)
    return studies.order_by("status_changed_at", "id").first()
