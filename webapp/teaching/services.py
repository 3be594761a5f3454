"""Grading trainee sonographers' exams: queue, AI pre-fill, submission, second grading and
adjudication, agreement, trainee feedback and dashboards.

Rules kept here:
- only exams whose sonographer is a trainee are graded, by supervisors, never by the trainee;
- an exam is graded at most twice (rounds 1 and 2, two different supervisors); the criteria the
  two disagree on are resolved by a third supervisor (adjudication);
- the second grade and the adjudication use the rubric version of the first grade, so the two
  grades compare criterion by criterion even after an admin has published a new version;
- a grade is written whole in one transaction or not at all, and every write and read of
  grades is audited (exams' AuditEvent);
- the final verdict of a criterion is the adjudicator's where there is one, else the first
  grade's (the two graders agree on it, or the disagreement is waiting for adjudication).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from webapp.accounts.models import Role
from webapp.analysis import services as analysis
from webapp.analysis.models import AnalysisRun, BestFrameFinding, QualityFinding, RunStatus
from webapp.exams.models import AuditEvent, Instance, Study
from webapp.exams.services import audit
from webapp.teaching import seed
from webapp.teaching.agreement import Agreement, agreement
from webapp.teaching.models import (
    CriterionGrade,
    Grade,
    GradeRound,
    GradeVerdict,
    Rubric,
    RubricCriterion,
)

SALOMON_RUBRIC = seed.NAME
DEFAULT_PROTOCOL = "biometry"
EXAM_PLANE = "exam"
#: The protocol view whose saved image each rubric plane is judged on.
PLANE_VIEWS = {"head": "head_trans_thalamic", "abdomen": "abdomen_ac", "femur": "femur_fl"}
PLANE_NAMES = {
    "head": "Head (HC/BPD)",
    "abdomen": "Abdomen (AC)",
    "femur": "Femur (FL)",
    EXAM_PLANE: "Exam completeness",
}
VERDICTS = tuple(GradeVerdict.values)


class GradingRefused(Exception):
    """The grade cannot be made; the message says what and why (shown to the user as is)."""


# --------------------------------------------------------------------------------------------
# Rubric and access
# --------------------------------------------------------------------------------------------


def active_rubric(*, name: str = SALOMON_RUBRIC) -> Rubric:
    """The highest active version of the rubric ``name``; GradingRefused if there is none."""
    rubric = Rubric.objects.filter(name=name, active=True).order_by("-version").first()
    if rubric is None and name == SALOMON_RUBRIC and not Rubric.objects.filter(name=name).exists():
        # An emptied database (flushed between transactional tests) gets the seed back.
        rubric = seed.seed_v1(Rubric, RubricCriterion)
    if rubric is None:
        raise GradingRefused(f"no active version of the rubric {name!r}; ask an administrator")
    return rubric


def new_rubric_version(*, rubric: Rubric, created_by: Any = None, note: str = "") -> Rubric:
    """Copy ``rubric`` (with its criteria) as the next version of its name and make the copy the
    only active version. Side effects: one Rubric row and its RubricCriterion rows created; the
    older versions of that name set inactive (their grades keep pointing at them)."""
    with transaction.atomic():
        latest = (
            Rubric.objects.select_for_update().filter(name=rubric.name).order_by("-version").first()
        )
        version = (latest.version if latest else rubric.version) + 1
        Rubric.objects.filter(name=rubric.name).update(active=False)
        copy = Rubric.objects.create(
            name=rubric.name,
            version=version,
            active=True,
            reference=rubric.reference,
            note=note or f"copied from version {rubric.version}",
            created_by=created_by,
        )
        RubricCriterion.objects.bulk_create(
            RubricCriterion(
                rubric=copy,
                plane=c.plane,
                key=c.key,
                wording=c.wording,
                points=c.points,
                order=c.order,
                protocol=c.protocol,
            )
            for c in rubric.criteria.all()
        )
    return copy


def is_supervisor(user: Any) -> bool:
    return bool(user.is_authenticated and user.has_role(Role.SUPERVISOR, Role.ADMIN))


def can_view_trainee(*, viewer: Any, trainee: Any) -> bool:
    """Supervisors and admins see every trainee's grades; a trainee only their own."""
    return is_supervisor(viewer) or (viewer.is_authenticated and viewer.pk == trainee.pk)


def trainees() -> QuerySet:
    from webapp.accounts.models import User

    return User.objects.filter(is_trainee=True, is_active=True).order_by("username")


def exam_protocol(study: Study) -> str:
    run = analysis.latest_finished_run(study)
    return run.protocol if run is not None else DEFAULT_PROTOCOL


def criteria_for(*, rubric: Rubric, protocol: str) -> list[RubricCriterion]:
    """The criteria graded on an exam: every plane criterion, and the completeness item of the
    exam's protocol (when the rubric has one)."""
    return [
        c for c in rubric.criteria.all() if c.plane != EXAM_PLANE or c.protocol in ("", protocol)
    ]


def exam_rubric(study: Study) -> Rubric:
    """The rubric version an exam is graded with: the first grade's, else the active one."""
    first = study.grades.select_related("rubric").filter(round=GradeRound.FIRST).first()
    return first.rubric if first is not None else active_rubric()


# --------------------------------------------------------------------------------------------
# Queue
# --------------------------------------------------------------------------------------------


@dataclass
class QueueItem:
    study: Study
    round: str
    note: str = ""

    @property
    def label(self) -> str:
        return dict(GradeRound.choices).get(self.round, self.round)


def grading_queue(*, supervisor: Any) -> dict[str, list[QueueItem]]:
    """Trainee exams waiting for this supervisor, oldest first: ``to_grade`` (fewer than two
    grades, none by this supervisor) and ``to_adjudicate`` (two grades that disagree, no
    adjudication yet, neither by this supervisor). Read-only."""
    base = (
        Study.objects.filter(sonographer__is_trainee=True)
        .exclude(sonographer=supervisor)
        .exclude(grades__supervisor=supervisor)
        .select_related("patient", "sonographer")
        .annotate(
            analysed=Exists(
                AnalysisRun.objects.filter(study=OuterRef("pk"), status=RunStatus.DONE)
            ),
            n_grades=Count("grades", filter=~Q(grades__round=GradeRound.ADJUDICATION)),
            n_adjudications=Count("grades", filter=Q(grades__round=GradeRound.ADJUDICATION)),
        )
        .order_by("created_at", "pk")
    )
    to_grade = [
        QueueItem(
            s,
            GradeRound.FIRST if s.n_grades == 0 else GradeRound.SECOND,
            "" if s.n_grades == 0 else "second grading (graded once by another supervisor)",
        )
        for s in base.filter(n_grades__lt=2)
    ]
    to_adjudicate = []
    for s in base.filter(n_grades=2, n_adjudications=0):
        n = len(disagreements(study=s))
        if n:
            to_adjudicate.append(QueueItem(s, GradeRound.ADJUDICATION, f"{n} criteria disagree"))
    return {"to_grade": to_grade, "to_adjudicate": to_adjudicate}


# --------------------------------------------------------------------------------------------
# AI pre-fill
# --------------------------------------------------------------------------------------------


@dataclass
class PrefilledCriterion:
    criterion: RubricCriterion
    ai_verdict: str  # met / not_met / not_assessable / "" (no AI finding)
    proposed: str  # the verdict the form starts with: the AI's met / not met, else ""
    evidence: dict[str, Any]
    rationale: str
    instance: Instance | None
    frame_number: int | None
    quality_finding_id: int | None = None


@dataclass
class PrefilledPlane:
    plane: str
    name: str
    view_key: str | None
    instance: Instance | None
    frame_number: int | None
    criteria: list[PrefilledCriterion] = field(default_factory=list)


def _completeness_verdict(study: Study, protocol: str) -> tuple[str, dict[str, Any], str]:
    try:
        c = analysis.completeness(study=study, protocol=protocol)
    except analysis.AnalysisRefused as exc:
        return QualityFinding.Verdict.NOT_ASSESSABLE, {}, str(exc)
    if not c["analysed"]:
        return QualityFinding.Verdict.NOT_ASSESSABLE, {}, "the exam has not been analysed"
    evidence = {
        "required": c["required"],
        "found": c["found"],
        "missing": c["missing"],
        "needs_person": c["needs_person"],
    }
    text = f"{c['found']} of {c['required']} required views found"
    if c["missing"]:
        return (
            QualityFinding.Verdict.NOT_MET,
            evidence,
            f"{text}; missing: {', '.join(c['missing'])}",
        )
    if c["needs_person"]:
        return (
            QualityFinding.Verdict.NOT_ASSESSABLE,
            evidence,
            f"{text}; no model recognises: {', '.join(c['needs_person'])}",
        )
    return QualityFinding.Verdict.MET, evidence, text


def prefill_grade(*, study: Study, rubric: Rubric) -> list[PrefilledPlane]:
    """The rubric's criteria for ``study`` grouped by plane, each with the AI's verdict, evidence
    and the saved image (instance and frame) it was judged on, from the exam's latest finished
    analysis run. A criterion the AI could not judge (or no run) starts unanswered. Read-only."""
    protocol = exam_protocol(study)
    run = analysis.latest_finished_run(study)
    quality: dict[str, QualityFinding] = {}
    best: dict[str, BestFrameFinding] = {}
    if run is not None:
        quality = {
            q.criterion_key: q
            for q in QualityFinding.objects.filter(run=run).select_related("instance")
        }
        best = {
            b.view_key: b
            for b in BestFrameFinding.objects.filter(run=run, frame_number__isnull=False)
            .exclude(flag=BestFrameFinding.Flag.ABSENT)
            .select_related("instance")
        }
    planes: dict[str, PrefilledPlane] = {}
    for c in criteria_for(rubric=rubric, protocol=protocol):
        plane = planes.get(c.plane)
        if plane is None:
            view = PLANE_VIEWS.get(c.plane)
            b = best.get(view) if view else None
            plane = planes[c.plane] = PrefilledPlane(
                c.plane,
                PLANE_NAMES.get(c.plane, c.plane),
                view,
                b.instance if b else None,
                b.frame_number if b else None,
            )
        if c.plane == EXAM_PLANE:
            verdict, evidence, rationale = _completeness_verdict(study, protocol)
            item = PrefilledCriterion(c, verdict, "", evidence, rationale, None, None)
        else:
            q = quality.get(c.key)
            if q is None:
                item = PrefilledCriterion(
                    c, "", "", {}, "no AI finding for this criterion", None, None
                )
            else:
                item = PrefilledCriterion(
                    c,
                    q.verdict,
                    "",
                    dict(q.evidence or {}),
                    q.rationale,
                    q.instance,
                    q.frame_number,
                    q.pk,
                )
                if plane.instance is None and q.instance is not None:
                    plane.instance, plane.frame_number = q.instance, q.frame_number
        if item.ai_verdict in (GradeVerdict.MET, GradeVerdict.NOT_MET):
            item.proposed = item.ai_verdict
        if item.instance is None and c.plane != EXAM_PLANE:
            item.instance, item.frame_number = plane.instance, plane.frame_number
        plane.criteria.append(item)
    return list(planes.values())


# --------------------------------------------------------------------------------------------
# Submission
# --------------------------------------------------------------------------------------------


def _check_answers(
    items: list[PrefilledCriterion],
    answers: Mapping[str, str],
    comments: Mapping[str, str],
) -> None:
    keys = {i.criterion.key for i in items}
    unknown = sorted((set(answers) | {k for k, v in comments.items() if v}) - keys)
    if unknown:
        raise GradingRefused(f"{', '.join(unknown)}: not a criterion of this grading")
    bad = sorted(k for k, v in answers.items() if v and v not in VERDICTS)
    if bad:
        raise GradingRefused(
            f"{bad[0]}: unknown verdict {answers[bad[0]]!r}; expected one of " + ", ".join(VERDICTS)
        )
    missing = [i.criterion for i in items if not answers.get(i.criterion.key)]
    if missing:
        names = "; ".join(f"{c.key} ({c.wording})" for c in missing)
        raise GradingRefused(f"{len(missing)} criteria not answered: {names}")


def check_exam(study: Study, supervisor: Any) -> None:
    if not supervisor.has_role(Role.SUPERVISOR):
        raise GradingRefused("only supervisors grade trainees' exams")
    sonographer = study.sonographer
    if sonographer is None or not sonographer.is_trainee:
        who = sonographer.get_username() if sonographer else "an unknown sonographer"
        raise GradingRefused(
            f"exam {study.pk} was performed by {who}, who is not a trainee; "
            "only trainees' exams are graded"
        )
    if sonographer.pk == supervisor.pk:
        raise GradingRefused("you cannot grade your own exam")


def why_not_gradable(*, study: Study, supervisor: Any, adjudication: bool = False) -> str:
    """The sentence :func:`submit_grade` (or :func:`adjudicate`) would refuse with before any
    answer is looked at, or "" when the grading page may be filled in. Read-only."""
    try:
        check_exam(study, supervisor)
    except GradingRefused as exc:
        return str(exc)
    rounds = set(study.grades.values_list("round", flat=True))
    mine = study.grades.filter(supervisor=supervisor).exists()
    if adjudication:
        if mine:
            return "the adjudicator must be a third supervisor; you have graded this exam"
        if GradeRound.ADJUDICATION in rounds:
            return f"exam {study.pk} has been adjudicated already"
        if not disagreements(study=study):
            return f"exam {study.pk} has no disagreement between two grades to adjudicate"
        return ""
    if mine:
        return f"you have already graded exam {study.pk}"
    if GradeRound.SECOND in rounds:
        return f"exam {study.pk} has been graded twice already; disagreements go to adjudication"
    return ""


def _write_grade(
    *,
    study: Study,
    supervisor: Any,
    rubric: Rubric,
    round: str,
    protocol: str,
    items: list[PrefilledCriterion],
    answers: Mapping[str, str],
    comments: Mapping[str, str],
    comment: str,
) -> Grade:
    grade = Grade.objects.create(
        study=study,
        supervisor=supervisor,
        trainee=study.sonographer,
        rubric=rubric,
        round=round,
        protocol=protocol,
        comment=comment.strip(),
    )
    rows = []
    for i in items:
        verdict = answers[i.criterion.key]
        rows.append(
            CriterionGrade(
                grade=grade,
                criterion=i.criterion,
                instance=i.instance,
                frame_number=i.frame_number,
                verdict=verdict,
                ai_verdict=i.ai_verdict,
                ai_evidence=i.evidence,
                ai_rationale=i.rationale,
                overridden=i.ai_verdict in (GradeVerdict.MET, GradeVerdict.NOT_MET)
                and verdict != i.ai_verdict,
                comment=(comments.get(i.criterion.key) or "").strip(),
            )
        )
    CriterionGrade.objects.bulk_create(rows)
    return grade


def submit_grade(
    *,
    study: Study,
    supervisor: Any,
    answers: Mapping[str, str],
    comments: Mapping[str, str] | None = None,
    comment: str = "",
    actor: Any = None,
) -> Grade:
    """Grade ``study`` (round 1, or 2 if another supervisor graded it already).

    ``answers``: criterion key → met / not_met / not_applicable, for every criterion of the
    exam's rubric version (:func:`criteria_for`); ``comments``: criterion key → text.
    Raises GradingRefused (nothing written) for a non-trainee exam, a missing or unknown
    criterion, an unknown verdict, a third grading or a second one by the same supervisor.
    Side effects: one Grade with its CriterionGrade rows (the AI pre-fill copied beside each
    verdict), in one transaction under a lock on the exam row; one AuditEvent (``actor``: the
    request or user, default ``supervisor``).
    """
    comments = comments or {}
    check_exam(study, supervisor)
    try:
        with transaction.atomic():
            locked = Study.objects.select_for_update().get(pk=study.pk)
            rounds = set(locked.grades.values_list("round", flat=True))
            if locked.grades.filter(supervisor=supervisor).exists():
                raise GradingRefused(f"you have already graded exam {study.pk}")
            if GradeRound.SECOND in rounds:
                raise GradingRefused(
                    f"exam {study.pk} has been graded twice already; "
                    "disagreements go to adjudication"
                )
            round = GradeRound.SECOND if GradeRound.FIRST in rounds else GradeRound.FIRST
            rubric = exam_rubric(locked)
            protocol = exam_protocol(locked)
            items = [i for p in prefill_grade(study=locked, rubric=rubric) for i in p.criteria]
            _check_answers(items, answers, comments)
            grade = _write_grade(
                study=locked,
                supervisor=supervisor,
                rubric=rubric,
                round=round,
                protocol=protocol,
                items=items,
                answers=answers,
                comments=comments,
                comment=comment,
            )
            overridden = sum(
                1
                for i in items
                if i.ai_verdict in VERDICTS[:2] and answers[i.criterion.key] != i.ai_verdict
            )
            audit(
                actor or supervisor,
                AuditEvent.Action.CREATE,
                locked,
                f"teaching grade {grade.pk} (round {round}, {rubric}) submitted; "
                f"{overridden} AI verdicts overridden",
            )
    except IntegrityError:
        # Two submissions raced past the lock-free checks; the constraints kept one.
        raise GradingRefused(f"exam {study.pk} was graded by someone else meanwhile") from None
    return grade


@dataclass
class Disagreement:
    criterion: RubricCriterion
    first: CriterionGrade
    second: CriterionGrade


def disagreements(*, study: Study) -> list[Disagreement]:
    """Criteria on which the exam's first and second grades differ (empty unless both exist).
    Read-only."""
    grades = {
        g.round: g for g in study.grades.filter(round__in=[GradeRound.FIRST, GradeRound.SECOND])
    }
    if len(grades) < 2:
        return []
    first = {
        c.criterion.key: c
        for c in grades[GradeRound.FIRST].criteria.select_related("criterion", "instance")
    }
    out = []
    for c in grades[GradeRound.SECOND].criteria.select_related("criterion", "instance"):
        f = first.get(c.criterion.key)
        if f is not None and f.verdict != c.verdict:
            out.append(Disagreement(f.criterion, f, c))
    return out


def adjudicate(
    *,
    study: Study,
    supervisor: Any,
    answers: Mapping[str, str],
    comments: Mapping[str, str] | None = None,
    comment: str = "",
    actor: Any = None,
) -> Grade:
    """A third supervisor resolves the criteria the two grades of ``study`` disagree on.

    ``answers`` must hold a verdict for exactly those criteria. Raises GradingRefused (nothing
    written) when there is nothing to adjudicate, when the supervisor graded the exam, or for a
    missing/unknown criterion or verdict. Side effects: one Grade (round ``adjudication``) with a
    CriterionGrade per disputed criterion; one AuditEvent.
    """
    comments = comments or {}
    check_exam(study, supervisor)
    try:
        with transaction.atomic():
            locked = Study.objects.select_for_update().get(pk=study.pk)
            if locked.grades.filter(supervisor=supervisor).exists():
                raise GradingRefused(
                    "the adjudicator must be a third supervisor; you have graded this exam"
                )
            if locked.grades.filter(round=GradeRound.ADJUDICATION).exists():
                raise GradingRefused(f"exam {study.pk} has been adjudicated already")
            disputed = disagreements(study=locked)
            if not disputed:
                raise GradingRefused(
                    f"exam {study.pk} has no disagreement between two grades to adjudicate"
                )
            rubric = exam_rubric(locked)
            keys = {d.criterion.key for d in disputed}
            items = [
                i
                for p in prefill_grade(study=locked, rubric=rubric)
                for i in p.criteria
                if i.criterion.key in keys
            ]
            _check_answers(items, answers, comments)
            grade = _write_grade(
                study=locked,
                supervisor=supervisor,
                rubric=rubric,
                round=GradeRound.ADJUDICATION,
                protocol=exam_protocol(locked),
                items=items,
                answers=answers,
                comments=comments,
                comment=comment,
            )
            audit(
                actor or supervisor,
                AuditEvent.Action.CREATE,
                locked,
                f"teaching grade {grade.pk} adjudicates {len(items)} disputed criteria",
            )
    except IntegrityError:
        raise GradingRefused(f"exam {study.pk} was adjudicated by someone else meanwhile") from None
    return grade


# --------------------------------------------------------------------------------------------
# Final verdicts, feedback
# --------------------------------------------------------------------------------------------


def final_verdicts(grades: Iterable[Grade]) -> dict[str, CriterionGrade]:
    """Criterion key → the deciding CriterionGrade of one exam's grades: the adjudicator's,
    else the first grade's (else the second's, for a criterion the first did not have)."""
    by_round = {g.round: g for g in grades}
    out: dict[str, CriterionGrade] = {}
    for r in (GradeRound.SECOND, GradeRound.FIRST, GradeRound.ADJUDICATION):
        g = by_round.get(r)
        if g is not None:
            for c in g.criteria.all():
                out[c.criterion.key] = c
    return out


def plane_scores(final: Mapping[str, CriterionGrade]) -> dict[str, float | None]:
    """Plane → points met / points judged (not applicable counts in neither), 0–1."""
    met: dict[str, int] = defaultdict(int)
    judged: dict[str, int] = defaultdict(int)
    for c in final.values():
        plane = c.criterion.plane
        if c.verdict == GradeVerdict.NOT_APPLICABLE:
            judged.setdefault(plane, 0)
            continue
        judged[plane] += c.criterion.points
        if c.verdict == GradeVerdict.MET:
            met[plane] += c.criterion.points
    return {p: (met[p] / n if n else None) for p, n in judged.items()}


@dataclass
class ExamFeedback:
    study: Study
    grades: list[Grade]
    final: dict[str, CriterionGrade]
    scores: dict[str, float | None]
    missed: list[CriterionGrade]
    comments: list[tuple[str, str]]
    pending_adjudication: bool
    complete: bool | None


def _graded_grades(trainee: Any) -> QuerySet:
    return (
        Grade.objects.filter(trainee=trainee)
        .select_related("study", "study__patient", "supervisor", "rubric")
        .prefetch_related("criteria__criterion", "criteria__instance")
        .order_by("study__created_at", "study_id", "submitted_at")
    )


def _exam_feedback(study: Study, grades: list[Grade]) -> ExamFeedback:
    final = final_verdicts(grades)
    rounds = {g.round for g in grades}
    pending = (
        GradeRound.SECOND in rounds
        and GradeRound.ADJUDICATION not in rounds
        and bool(disagreements(study=study))
    )
    missed = [c for c in final.values() if c.verdict == GradeVerdict.NOT_MET]
    missed.sort(key=lambda c: c.criterion.order)
    comments = [
        (g.supervisor.get_full_name() or g.supervisor.get_username(), g.comment)
        for g in grades
        if g.comment
    ]
    comments += [(c.criterion.wording, c.comment) for c in final.values() if c.comment]
    complete = None
    for c in final.values():
        if c.criterion.plane == EXAM_PLANE and c.verdict != GradeVerdict.NOT_APPLICABLE:
            complete = c.verdict == GradeVerdict.MET
    return ExamFeedback(
        study, grades, final, plane_scores(final), missed, comments, pending, complete
    )


def trainee_feedback(*, trainee: Any, viewer: Any, actor: Any = None) -> list[ExamFeedback]:
    """The trainee's graded exams, newest first: final verdicts, plane scores, the criteria
    missed (with the image they were judged on) and the supervisors' comments.

    Raises PermissionError unless ``viewer`` is a supervisor/admin or the trainee. Side effect:
    one AuditEvent (view) for the read.
    """
    if not can_view_trainee(viewer=viewer, trainee=trainee):
        raise PermissionError("trainees see only their own grades")
    by_study: dict[int, list[Grade]] = defaultdict(list)
    studies: dict[int, Study] = {}
    for g in _graded_grades(trainee):
        by_study[g.study_id].append(g)
        studies[g.study_id] = g.study
    out = [_exam_feedback(studies[sid], gs) for sid, gs in by_study.items()]
    audit(
        actor or viewer,
        AuditEvent.Action.VIEW,
        f"teaching feedback of {trainee.get_username()}",
        f"{len(out)} graded exams",
    )
    return list(reversed(out))


# --------------------------------------------------------------------------------------------
# Agreement between graders
# --------------------------------------------------------------------------------------------


@dataclass
class CriterionAgreement:
    key: str
    plane: str
    wording: str
    stats: Agreement


def agreement_by_criterion(*, rubric_name: str = SALOMON_RUBRIC) -> list[CriterionAgreement]:
    """Per criterion key: percentage agreement and Cohen's kappa between the first and second
    grades of every double-graded exam (verdicts met / not met / not applicable). Read-only."""
    pairs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    meta: dict[str, RubricCriterion] = {}
    seconds = (
        Grade.objects.filter(round=GradeRound.SECOND, rubric__name=rubric_name)
        .select_related("study")
        .prefetch_related("criteria__criterion")
    )
    firsts = {
        g.study_id: g
        for g in Grade.objects.filter(
            round=GradeRound.FIRST, study_id__in=seconds.values("study_id")
        ).prefetch_related("criteria__criterion")
    }
    for second in seconds:
        first = firsts.get(second.study_id)
        if first is None:
            continue
        a = {c.criterion.key: c.verdict for c in first.criteria.all()}
        for c in second.criteria.all():
            if c.criterion.key in a:
                pairs[c.criterion.key].append((a[c.criterion.key], c.verdict))
                meta.setdefault(c.criterion.key, c.criterion)
    rows = [
        CriterionAgreement(k, meta[k].plane, meta[k].wording, agreement(v))
        for k, v in pairs.items()
    ]
    rows.sort(key=lambda r: meta[r.key].order)
    return rows


# --------------------------------------------------------------------------------------------
# Dashboards
# --------------------------------------------------------------------------------------------


@dataclass
class PeriodRow:
    period: str  # YYYY-MM of the exam
    exams: int
    completeness_rate: float | None  # 0-1 of exams whose completeness item was judged
    mean_scores: dict[str, float | None]  # plane → mean plane score 0-1


@dataclass
class Dashboard:
    label: str
    exams: int
    periods: list[PeriodRow]
    most_missed: list[tuple[str, str, int, int]]  # key, wording, times missed, times graded
    measurement_agreement: list[dict[str, Any]]  # empty: no physician-edited measurements


RUBRIC_PLANES = ("head", "abdomen", "femur")


def _exam_month(study: Study) -> str:
    d = study.study_date or study.created_at.date()
    return f"{d.year:04d}-{d.month:02d}"


def _measurement_agreement(study_ids: list[int]) -> list[dict[str, Any]]:
    """Per measurement kind, on the trainees' exams: the measurement on the trainee's saved image
    against the physician's edited value (latest decision per finding, where it was an edit with
    a mm value). Empty when no physician has edited one."""
    from webapp.review.models import DecisionAction, FindingDecision, FindingType

    latest: dict[int, FindingDecision] = {}
    for d in (
        FindingDecision.objects.filter(study_id__in=study_ids, finding_type=FindingType.MEASUREMENT)
        .select_related("measurement")
        .order_by("finding_id", "version")
    ):
        latest[d.finding_id] = d
    diffs: dict[str, list[float]] = defaultdict(list)
    for d in latest.values():
        m = d.measurement
        if (
            d.action == DecisionAction.EDITED
            and d.edited_value_mm is not None
            and m is not None
            and m.value_mm is not None
        ):
            diffs[m.kind].append(m.value_mm - d.edited_value_mm)
    return [
        {
            "kind": kind,
            "n": len(v),
            "mean_abs_diff_mm": sum(abs(x) for x in v) / len(v),
            "mean_diff_mm": sum(v) / len(v),
        }
        for kind, v in sorted(diffs.items())
    ]


def dashboard(*, trainee: Any = None, label: str = "") -> Dashboard:
    """Numbers behind the dashboard of one trainee (``trainee``) or of the whole cohort
    (``None``): per month of the exam, the completeness rate and mean plane quality score of
    the graded exams (final verdicts); the criteria missed most often; the physicians'
    corrections of measurements on those exams. Read-only."""
    grades = Grade.objects.all() if trainee is None else Grade.objects.filter(trainee=trainee)
    grades = (
        grades.select_related("study", "supervisor")
        .prefetch_related("criteria__criterion")
        .order_by("study_id", "submitted_at")
    )
    by_study: dict[int, list[Grade]] = defaultdict(list)
    studies: dict[int, Study] = {}
    for g in grades:
        by_study[g.study_id].append(g)
        studies[g.study_id] = g.study
    per_month: dict[str, list[dict[str, Any]]] = defaultdict(list)
    missed: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    wording: dict[str, str] = {}
    for sid, gs in by_study.items():
        final = final_verdicts(gs)
        complete = None
        for c in final.values():
            key = c.criterion.key
            wording[key] = c.criterion.wording
            if c.verdict != GradeVerdict.NOT_APPLICABLE:
                missed[key][1] += 1
                if c.verdict == GradeVerdict.NOT_MET:
                    missed[key][0] += 1
            if c.criterion.plane == EXAM_PLANE and c.verdict != GradeVerdict.NOT_APPLICABLE:
                complete = c.verdict == GradeVerdict.MET
        per_month[_exam_month(studies[sid])].append(
            {"scores": plane_scores(final), "complete": complete}
        )
    periods = []
    for month in sorted(per_month):
        rows = per_month[month]
        judged = [r["complete"] for r in rows if r["complete"] is not None]
        means: dict[str, float | None] = {}
        for plane in RUBRIC_PLANES:
            vals = [r["scores"][plane] for r in rows if r["scores"].get(plane) is not None]
            means[plane] = sum(vals) / len(vals) if vals else None
        periods.append(
            PeriodRow(
                month,
                len(rows),
                sum(judged) / len(judged) if judged else None,
                means,
            )
        )
    most_missed = sorted(
        ((k, wording[k], m, n) for k, (m, n) in missed.items() if m),
        key=lambda r: (-r[2] / r[3], -r[2], r[0]),
    )[:8]
    return Dashboard(
        label or (trainee.get_username() if trainee is not None else "All trainees"),
        len(by_study),
        periods,
        most_missed,
        _measurement_agreement(list(by_study)),
    )


def dashboard_csv(*, board: Dashboard) -> str:
    """The dashboard's numbers as CSV text (one section per table, ``section`` column first)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["section", "who", "period", "exams", "completeness_rate"]
               + [f"mean_score_{p}" for p in RUBRIC_PLANES])  # fmt: skip
    for p in board.periods:
        w.writerow(
            ["period", board.label, p.period, p.exams, _fmt(p.completeness_rate)]
            + [_fmt(p.mean_scores.get(pl)) for pl in RUBRIC_PLANES]
        )
    w.writerow(["section", "who", "criterion", "times_missed", "times_graded", "wording"])
    for key, text, m, n in board.most_missed:
        w.writerow(["most_missed", board.label, key, m, n, text])
    if board.measurement_agreement:
        w.writerow(["section", "who", "kind", "n", "mean_abs_diff_mm", "mean_diff_mm"])
        for r in board.measurement_agreement:
            w.writerow(
                ["measurement_agreement", board.label, r["kind"], r["n"],
                 _fmt(r["mean_abs_diff_mm"]), _fmt(r["mean_diff_mm"])]
            )  # fmt: skip
    return out.getvalue()


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def dashboard_png(*, board: Dashboard) -> bytes:
    """The dashboard drawn with matplotlib (Agg): completeness rate and mean plane score per
    month, and the most-missed criteria. Returns PNG bytes."""
    # A bare Figure (no pyplot): no global backend state, safe in threaded servers.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=100)
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    months = [p.period for p in board.periods]
    x = list(range(len(months)))
    if months:
        comp = [p.completeness_rate for p in board.periods]
        # Wide faint line and distinct markers: equal values (often 100 %) stay distinguishable.
        ax1.plot(
            [i for i, v in zip(x, comp, strict=True) if v is not None],
            [100 * v for v in comp if v is not None],
            "-o",
            color="#555555",
            linewidth=5,
            alpha=0.35,
            markersize=11,
            label="completeness",
        )
        styles = (("#1d5f8a", "s", 8), ("#c05a00", "^", 7), ("#2e7d32", "D", 5))
        for plane, (colour, marker, size) in zip(RUBRIC_PLANES, styles, strict=True):
            vals = [p.mean_scores.get(plane) for p in board.periods]
            pts = [(i, 100 * v) for i, v in zip(x, vals, strict=True) if v is not None]
            if pts:
                ax1.plot(
                    *zip(*pts, strict=True),
                    "-",
                    marker=marker,
                    markersize=size,
                    color=colour,
                    label=f"{plane} score",
                )
        ax1.set_xlim(-0.5, len(months) - 0.5)
        ax1.set_xticks(x, months, rotation=30, fontsize=8)
        ax1.legend(fontsize=7, loc="lower right")
    else:
        ax1.text(0.5, 0.5, "no graded exams yet", ha="center", va="center")
    ax1.set_ylim(0, 105)
    ax1.set_ylabel("%")
    ax1.set_title(f"{board.label}: quality over time", fontsize=10)
    ax1.grid(alpha=0.3)
    if board.most_missed:
        labels = [k for k, _, _, _ in board.most_missed][::-1]
        rates = [100 * m / n for _, _, m, n in board.most_missed][::-1]
        ax2.barh(range(len(labels)), rates, color="#a12a2a")
        ax2.set_yticks(range(len(labels)), labels, fontsize=7)
        ax2.set_xlim(0, 100)
    else:
        ax2.text(0.5, 0.5, "no criteria missed", ha="center", va="center")
        ax2.set_yticks([])
    ax2.set_xlabel("% of gradings missed")
    ax2.set_title("Most-missed criteria", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
