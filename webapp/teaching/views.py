"""Teaching pages: parse the request, call one service, render.

Access: grading, adjudication and agreement are for supervisors (admins may look at the
queue, agreement and dashboards); a trainee sees only their own feedback and dashboard, and
another trainee's page answers 404 (its existence is not revealed).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from webapp.accounts.models import Role
from webapp.accounts.roles import require_role
from webapp.exams.models import AuditEvent, Study
from webapp.exams.services import audit
from webapp.teaching import services
from webapp.teaching.models import GradeVerdict
from webapp.teaching.services import GradingRefused

VERDICT_CHOICES = [
    (GradeVerdict.MET, "Met", "1 / m"),
    (GradeVerdict.NOT_MET, "Not met", "2 / n"),
    (GradeVerdict.NOT_APPLICABLE, "Not applicable", "3 / a"),
]


def _evidence_text(evidence: dict[str, Any]) -> str:
    parts = []
    for key, value in evidence.items():
        if isinstance(value, float):
            parts.append(f"{key.replace('_', ' ')} {value:g}")
        elif isinstance(value, int | str | bool) and str(value) != "":
            parts.append(f"{key.replace('_', ' ')} {value}")
        elif isinstance(value, list) and value and len(value) <= 6 and key != "region_bbox_xyxy":
            parts.append(f"{key.replace('_', ' ')} {', '.join(str(v) for v in value)}")
    return "; ".join(parts)


def _posted(request: HttpRequest) -> tuple[dict[str, str], dict[str, str], str]:
    answers, comments = {}, {}
    for name, value in request.POST.items():
        if name.startswith("verdict__"):
            answers[name.removeprefix("verdict__")] = value.strip()
        elif name.startswith("comment__"):
            comments[name.removeprefix("comment__")] = value
    return answers, comments, request.POST.get("comment", "")


def _form_planes(planes: list, answers: dict[str, str], comments: dict[str, str]) -> list:
    for plane in planes:
        for item in plane.criteria:
            key = item.criterion.key
            item.current = answers.get(key, item.proposed)
            item.comment = comments.get(key, "")
            item.evidence_text = _evidence_text(item.evidence)
            box = item.evidence.get("region_bbox_xyxy")
            item.box = None
            if isinstance(box, list) and len(box) == 4:
                x1, y1, x2, y2 = (float(v) for v in box)
                item.box = (x1, y1, x2 - x1, y2 - y1)  # SVG rect: x, y, width, height
    return planes


@require_role(Role.SUPERVISOR, Role.ADMIN)
@require_GET
def grading_queue(request: HttpRequest) -> HttpResponse:
    queue = services.grading_queue(supervisor=request.user)
    audit(
        request,
        AuditEvent.Action.VIEW,
        "teaching grading queue",
        f"{len(queue['to_grade'])} to grade, {len(queue['to_adjudicate'])} to adjudicate",
    )
    return render(request, "teaching/queue.html", queue)


def _grading_page(request: HttpRequest, study_id: int, *, adjudication: bool) -> HttpResponse:
    study = get_object_or_404(Study.objects.select_related("patient", "sonographer"), pk=study_id)
    error = ""
    answers: dict[str, str] = {}
    comments: dict[str, str] = {}
    comment = ""
    if request.method == "POST":
        answers, comments, comment = _posted(request)
        submit = services.adjudicate if adjudication else services.submit_grade
        try:
            submit(
                study=study,
                supervisor=request.user,
                answers=answers,
                comments=comments,
                comment=comment,
                actor=request,
            )
        except GradingRefused as exc:
            error = str(exc)
        else:
            return redirect(f"{_queue_url()}?graded={study.pk}")
    try:
        rubric = services.exam_rubric(study)
        planes = services.prefill_grade(study=study, rubric=rubric)
    except GradingRefused as exc:
        return render(request, "teaching/refused.html", {"message": str(exc)}, status=409)
    if adjudication:
        keys = {d.criterion.key: d for d in services.disagreements(study=study)}
        for plane in planes:
            plane.criteria = [i for i in plane.criteria if i.criterion.key in keys]
            for i in plane.criteria:
                i.dispute = keys[i.criterion.key]
        planes = [p for p in planes if p.criteria]
    blocked = services.why_not_gradable(
        study=study, supervisor=request.user, adjudication=adjudication
    )
    error = error or blocked
    if request.method == "GET":
        audit(request, AuditEvent.Action.VIEW, study, "teaching grading page")
    return render(
        request,
        "teaching/grade.html",
        {
            "study": study,
            "rubric": rubric,
            "planes": _form_planes(planes, answers, comments),
            "verdicts": VERDICT_CHOICES,
            "error": error,
            "blocked": bool(blocked),
            "comment": comment,
            "adjudication": adjudication,
            "round_label": "Adjudication" if adjudication else _round_label(study),
        },
        status=400 if error and request.method == "POST" else 200,
    )


def _queue_url() -> str:
    from django.urls import reverse

    return reverse("teaching:grading_queue")


def _round_label(study: Study) -> str:
    n = study.grades.exclude(round="adjudication").count()
    return "Second grading" if n == 1 else "First grading" if n == 0 else "Graded twice"


@require_role(Role.SUPERVISOR)
@require_http_methods(["GET", "POST"])
def grade_exam(request: HttpRequest, study_id: int) -> HttpResponse:
    return _grading_page(request, study_id, adjudication=False)


@require_role(Role.SUPERVISOR)
@require_http_methods(["GET", "POST"])
def adjudicate_exam(request: HttpRequest, study_id: int) -> HttpResponse:
    return _grading_page(request, study_id, adjudication=True)


@require_role(Role.SUPERVISOR, Role.ADMIN)
@require_GET
def agreement_page(request: HttpRequest) -> HttpResponse:
    rows = services.agreement_by_criterion()
    queue = services.grading_queue(supervisor=request.user)
    audit(request, AuditEvent.Action.VIEW, "teaching agreement", f"{len(rows)} criteria")
    return render(
        request,
        "teaching/agreement.html",
        {"rows": rows, "to_adjudicate": queue["to_adjudicate"]},
    )


def _feedback(request: HttpRequest, trainee: Any) -> HttpResponse:
    try:
        exams = services.trainee_feedback(trainee=trainee, viewer=request.user, actor=request)
    except PermissionError:
        raise Http404("no such trainee") from None
    return render(
        request,
        "teaching/feedback.html",
        {"trainee": trainee, "exams": exams, "own": trainee.pk == request.user.pk},
    )


@login_required
@require_GET
def my_feedback(request: HttpRequest) -> HttpResponse:
    return _feedback(request, request.user)


@login_required
@require_GET
def trainee_feedback_page(request: HttpRequest, user_id: int) -> HttpResponse:
    trainee = get_object_or_404(get_user_model(), pk=user_id)
    return _feedback(request, trainee)


@require_role(Role.SUPERVISOR, Role.ADMIN)
@require_GET
def trainee_list(request: HttpRequest) -> HttpResponse:
    people = list(services.trainees())
    return render(request, "teaching/trainees.html", {"trainees": people})


def _board(request: HttpRequest, who: str) -> services.Dashboard:
    """``who``: ``cohort`` (supervisors) or a user id (supervisors, or that trainee)."""
    if who == "cohort":
        if not services.is_supervisor(request.user):
            raise Http404("no such dashboard")
        return services.dashboard(trainee=None)
    try:
        trainee = get_user_model().objects.get(pk=int(who))
    except (ValueError, get_user_model().DoesNotExist):
        raise Http404("no such trainee") from None
    if not services.can_view_trainee(viewer=request.user, trainee=trainee):
        raise Http404("no such trainee")
    return services.dashboard(trainee=trainee)


@login_required
@require_GET
def dashboard_page(request: HttpRequest, who: str) -> HttpResponse:
    board = _board(request, who)
    audit(request, AuditEvent.Action.VIEW, f"teaching dashboard {who}", f"{board.exams} exams")
    return render(request, "teaching/dashboard.html", {"board": board, "who": who})


@login_required
@require_GET
def dashboard_plot(request: HttpRequest, who: str) -> HttpResponse:
    board = _board(request, who)
    response = HttpResponse(services.dashboard_png(board=board), content_type="image/png")
    response["Cache-Control"] = "private, no-cache"
    return response


@login_required
@require_GET
def dashboard_export(request: HttpRequest, who: str) -> HttpResponse:
    board = _board(request, who)
    audit(request, AuditEvent.Action.EXPORT, f"teaching dashboard {who}", "CSV export")
    response = HttpResponse(services.dashboard_csv(board=board), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="teaching-{who}.csv"'
    return response
