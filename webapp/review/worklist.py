"""The worklist query: one page of exams with analysis progress, plane completeness and flags.

Built for 10,000+ exams: the page of studies is one query (patient and sonographer joined), the
count is one more, and everything per row (latest analysis run, best frames, measurements,
calibration) is read for the page's exams only, one query per table — never one per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.urls import reverse

from inference.planes import taxonomy
from webapp.analysis.models import AnalysisRun, BestFrameFinding, RunStatus
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
    planes_need_person: list[str] = field(default_factory=list)
    sub_optimal: int = 0
    low_confidence: int = 0
    missing_calibration: bool = False
    url: str = ""

    @cached_property
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
    studies = visible_studies(user)
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
    """One page of the worklist and its rows with progress, completeness and flags. Read-only.

    The page's ids are chosen on the study table alone (sorting 10,000 narrow rows, joining only
    when searching or sorting by a joined column); the 50 rows are then read with their patient
    and sonographer.
    """
    paginator = Paginator(
        filtered(user, status=status, q=q, sort=sort).values_list("pk", flat=True), PAGE_SIZE
    )
    current = paginator.get_page(page)
    ids = list(current.object_list)
    by_id = Study.objects.select_related("patient", "sonographer").order_by().in_bulk(ids)
    url = reverse("review:exam", args=[0]).replace("/0/", "/{}/")  # one reverse per page
    rows = [Row(by_id[pk], url=url.format(pk)) for pk in ids if pk in by_id]
    annotate_rows(rows)
    return current, rows


def latest_runs(study_ids: list[int], *, with_flags: bool = False) -> dict[int, AnalysisRun]:
    """Newest run per study (a handful of rows per exam at most; one query). ``with_flags`` adds
    the run's count of low-confidence measurements and of measurements without mm."""
    runs: dict[int, AnalysisRun] = {}
    query = AnalysisRun.objects.filter(study_id__in=study_ids)
    if with_flags:
        query = query.annotate(
            low_confidence=Count(
                "measurements", filter=Q(measurements__confidence__lt=LOW_CONFIDENCE)
            ),
            without_mm=Count("measurements", filter=Q(measurements__value_mm__isnull=True)),
        )
    for run in query.order_by("study_id", "-queued_at", "-id"):
        runs.setdefault(run.study_id, run)
    return runs


def annotate_rows(rows: list[Row]) -> None:
    """Fill each row's run, completeness and flags: three queries for the whole page."""
    ids = [r.study.pk for r in rows]
    if not ids:
        return
    runs = latest_runs(ids, with_flags=True)
    done_ids = [run.pk for run in runs.values() if run.status == RunStatus.DONE]
    flags: dict[int, dict[str, str]] = {}
    for run_id, view, flag in BestFrameFinding.objects.filter(run_id__in=done_ids).values_list(
        "run_id", "view_key", "flag"
    ):
        flags.setdefault(run_id, {})[view] = flag
    # An index lookup per page study (a correlated EXISTS made PostgreSQL hash every instance).
    uncalibrated = set(
        Instance.objects.filter(series__study_id__in=ids, calibration_source="none")
        .order_by()
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
            views = taxonomy.protocol(row.run.protocol)
        except ValueError:
            views = ()
        # Views no model recognises yet are a person's to mark (as analysis.completeness says),
        # not "missing".
        required = [v.key for v in views if v.classifier_label is not None]
        row.planes_need_person = [v.key for v in views if v.classifier_label is None]
        row.planes_required = len(required)
        if row.run.status != RunStatus.DONE:
            continue
        got = flags.get(row.run.pk, {})
        row.planes_found = sum(got.get(v) in ("optimal", "sub_optimal") for v in required)
        row.planes_missing = [v for v in required if got.get(v) not in ("optimal", "sub_optimal")]
        row.sub_optimal = sum(got.get(v) == "sub_optimal" for v in required)
        row.low_confidence = row.run.low_confidence
        row.missing_calibration = row.missing_calibration or row.run.without_mm > 0


def next_for_review(user: Any, *, after: int | None = None) -> Study | None:
    """The exam waiting longest for review (skipping ``after``), or None."""
    studies = visible_studies(user).filter(status=ExamStatus.READY_FOR_REVIEW)
    if after is not None:
        studies = studies.exclude(pk=after)
    return studies.order_by("status_changed_at", "id").first()
