"""Review pages (worklist, exam page, audit list) and the exam page's JSON API.

Views parse the request, call one service and render. Pages answer anonymous visitors with the
login redirect and other roles with the 403 page; the JSON API answers 401 / 403 / 404 / 409 / 400
as JSON ``{"error": "...", "field": "..."}`` so the page can say exactly what was wrong. Every
response carrying patient data is audited through the exams audit service.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from webapp.accounts.roles import require_role
from webapp.exams import services as exam_services
from webapp.exams.models import AuditEvent, ExamStatus, Study
from webapp.review import services, worklist
from webapp.review.state import exam_state

VIEW_ROLES = ("sonographer", "obstetrician", "supervisor")
REVIEW_ROLES = services.REVIEWER_ROLES
AUDIT_ROLES = ("admin",)
PREVIEW_AUDIT_WINDOW_S = 300
MAX_JSON_BYTES = 256 * 1024


def _error(message: str, status: int, field: str | None = None) -> JsonResponse:
    return JsonResponse({"error": message, "field": field}, status=status)


def api(
    *roles: str, method: str = "GET"
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """JSON endpoint for ``roles`` on one exam (``pk``): 405 another HTTP method, 401 anonymous,
    403 other roles, 404 an exam the user may not see; ReviewError → its status with field and
    reason. Every answer is JSON."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, pk: int, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method != method:
                response = _error(f"use {method} for this endpoint", 405, "method")
                response["Allow"] = method
                return response
            user = request.user
            if not user.is_authenticated:
                return _error("sign in required", 401)
            if not user.has_role(*roles):
                return _error(f"this action is for {' or '.join(r + 's' for r in roles)}", 403)
            study = worklist.visible_studies(user).select_related("patient").filter(pk=pk).first()
            if study is None:
                return _error(f"exam {pk} not found", 404)
            try:
                return view(request, study, *args, **kwargs)
            except services.ReviewError as exc:
                return JsonResponse(exc.as_dict(), status=exc.status)

        wrapped.required_roles = roles  # type: ignore[attr-defined]
        return wrapped

    return decorator


def _body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_JSON_BYTES:
        raise services.ReviewError(f"request body over {MAX_JSON_BYTES // 1024} kB", "body")
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise services.ReviewError(f"the body is not valid JSON ({exc})", "body") from None
        if not isinstance(data, dict):
            raise services.ReviewError("the body must be a JSON object", "body")
        return data
    return {k: request.POST.get(k) for k in request.POST}


def _reverse_or_empty(name: str, *args: Any) -> str:
    """URL of another app's page, or "" when that app is not installed."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _study_for_page(request: HttpRequest, pk: int) -> Study:
    study = worklist.visible_studies(request.user).select_related("patient", "sonographer")
    found = study.filter(pk=pk).first()
    if found is None:
        raise Http404("No such exam, or not one of yours")
    return found


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


def _worklist(request: HttpRequest, *, default_status: str, title: str) -> HttpResponse:
    status = request.GET.get("status", default_status)
    if status not in worklist.STATUS_FILTERS:
        messages.error(request, f"Unknown status filter {status!r}; showing all exams.")
        status = ""
    sort = request.GET.get("sort", "-date")
    if sort not in worklist.SORTS:
        messages.error(request, f"Unknown sort {sort!r}; sorted by date.")
        sort = "-date"
    q = request.GET.get("q", "")[:100]
    page, rows = worklist.page_of(
        request.user, status=status, q=q, sort=sort, page=request.GET.get("page", 1)
    )
    exam_services.audit(
        request,
        AuditEvent.Action.VIEW,
        "worklist",
        f"{title}: page {page.number}, {len(rows)} exams" + (f", search {q!r}" if q else ""),
    )
    return render(
        request,
        "review/worklist.html",
        {
            "title": title,
            "page": page,
            "rows": rows,
            "status": status,
            "sort": sort,
            "q": q,
            "statuses": [("", "All"), ("needs_review", "Needs review"), *ExamStatus.choices],
            "sorts": [
                ("-date", "Newest first"),
                ("date", "Oldest first"),
                ("waiting", "Waiting longest"),
                ("patient", "Patient A–Z"),
                ("-patient", "Patient Z–A"),
                ("status", "Status"),
                ("sonographer", "Sonographer"),
            ],
            "can_review": request.user.has_role(*REVIEW_ROLES),
        },
    )


@require_role(*VIEW_ROLES)
@require_GET
def worklist_page(request: HttpRequest) -> HttpResponse:
    return _worklist(request, default_status="", title="Worklist")


@require_role(*VIEW_ROLES)
@require_GET
def signed_page(request: HttpRequest) -> HttpResponse:
    return _worklist(request, default_status="signed", title="Signed reports")


@require_role(*VIEW_ROLES)
@require_GET
def next_exam(request: HttpRequest) -> HttpResponse:
    after = request.GET.get("after")
    study = worklist.next_for_review(
        request.user, after=int(after) if after and after.isdigit() else None
    )
    if study is None:
        messages.info(request, "No exam is waiting for review.")
        return redirect("review:worklist")
    return redirect("review:exam", pk=study.pk)


@require_role(*VIEW_ROLES)
@require_GET
def exam_page(request: HttpRequest, pk: int) -> HttpResponse:
    study = _study_for_page(request, pk)
    exam_services.audit(request, AuditEvent.Action.VIEW, study, "review exam page")
    state = exam_state(study, request.user)
    return render(
        request,
        "review/exam.html",
        {
            "study": study,
            "state": state,
            "dicomweb_root": reverse("exams:study_series", args=[study.study_instance_uid]).rsplit(
                "/studies/", 1
            )[0],
            "api": {
                "state": reverse("review:state", args=[pk]),
                "decide": reverse("review:decide", args=[pk]),
                "measure": reverse("review:measure", args=[pk]),
                "relabel": reverse("review:relabel", args=[pk]),
                "dating": reverse("review:dating", args=[pk]),
                "preview": reverse("review:preview", args=[pk]),
                "summary": reverse("review:summary", args=[pk]),
                "sign": reverse("review:sign", args=[pk]),
                "amend": reverse("review:amend", args=[pk]),
                "next": reverse("review:next") + f"?after={pk}",
                "worklist": reverse("review:worklist"),
                "reports": _reverse_or_empty("reports:panel", pk),
                "progress": _reverse_or_empty("analysis:progress", pk),
            },
        },
    )


@require_role(*AUDIT_ROLES)
@require_GET
def audit_page(request: HttpRequest) -> HttpResponse:
    events = AuditEvent.objects.all().order_by("-at", "-id")
    q = request.GET.get("q", "").strip()[:100]
    if q:
        events = events.filter(
            Q(username__icontains=q)
            | Q(study_instance_uid__icontains=q)
            | Q(detail__icontains=q)
            | Q(object_type__icontains=q)
        )
    action = request.GET.get("action", "")
    if action in AuditEvent.Action.values:
        events = events.filter(action=action)
    page = Paginator(events, 100).get_page(request.GET.get("page", 1))
    exam_services.audit(request, AuditEvent.Action.VIEW, "audit trail", f"page {page.number}")
    return render(
        request,
        "review/audit.html",
        {"page": page, "q": q, "action": action, "actions": AuditEvent.Action.choices},
    )


# --------------------------------------------------------------------------------------------
# JSON API of the exam page
# --------------------------------------------------------------------------------------------


@api(*VIEW_ROLES)
def state(request: HttpRequest, study: Study) -> HttpResponse:
    key = f"review-audit-state:{request.user.pk}:{study.pk}"
    if cache.add(key, 1, PREVIEW_AUDIT_WINDOW_S):
        exam_services.audit(request, AuditEvent.Action.VIEW, study, "review exam state")
    return JsonResponse(exam_state(study, request.user))


@api(*REVIEW_ROLES, method="POST")
def preview(request: HttpRequest, study: Study) -> HttpResponse:
    data = _body(request)
    ga_days = None
    if data.get("ga_weeks") not in (None, ""):
        from inference.biometry import parse_ga_weeks

        try:
            ga_days = parse_ga_weeks(str(data["ga_weeks"]))
        except ValueError as exc:
            raise services.ReviewError(str(exc), "ga_weeks") from None
    result = services.preview_measurement(
        study=study,
        finding_type=data.get("finding_type"),
        finding_id=data.get("finding_id"),
        kind=data.get("kind"),
        sop_instance_uid=data.get("sop"),
        frame=data.get("frame"),
        geometry_px=data.get("geometry_px"),
        ga_days=ga_days,
    )
    key = f"review-audit-preview:{request.user.pk}:{study.pk}"
    if cache.add(key, 1, PREVIEW_AUDIT_WINDOW_S):
        exam_services.audit(request, AuditEvent.Action.VIEW, study, "measurement recomputed")
    return JsonResponse(result)


@api(*REVIEW_ROLES, method="POST")
def decide(request: HttpRequest, study: Study) -> HttpResponse:
    data = _body(request)
    d = services.decide_finding(
        study=study,
        finding_type=data.get("finding_type"),
        finding_id=data.get("finding_id"),
        action=data.get("action"),
        version=data.get("version"),
        geometry_px=data.get("geometry_px"),
        label=data.get("label"),
        comment=data.get("comment"),
        user=request.user,
        actor=request,
    )
    return JsonResponse(
        {
            "ok": True,
            "version": d.version,
            "action": d.action,
            "edited_value_mm": d.edited_value_mm,
            "exam_status": study.status,
        }
    )


@api(*REVIEW_ROLES, method="POST")
def measure(request: HttpRequest, study: Study) -> HttpResponse:
    data = _body(request)
    m = services.add_measurement(
        study=study,
        sop_instance_uid=data.get("sop"),
        frame=data.get("frame"),
        kind=data.get("kind"),
        geometry_px=data.get("geometry_px"),
        convention=data.get("convention") or "",
        user=request.user,
        actor=request,
    )
    return JsonResponse(
        {"ok": True, "id": m.pk, "value_mm": m.value_mm, "value_px": m.value_px}, status=201
    )


@api(*REVIEW_ROLES, method="POST")
def relabel(request: HttpRequest, study: Study) -> HttpResponse:
    data = _body(request)
    r = services.relabel_frame(
        study=study,
        sop_instance_uid=data.get("sop"),
        frame=data.get("frame"),
        new_label=data.get("new_label"),
        version=data.get("version"),
        ai_label=data.get("ai_label") or "",
        comment=data.get("comment"),
        user=request.user,
        actor=request,
    )
    return JsonResponse({"ok": True, "version": r.version, "label": r.new_label})


@api(*REVIEW_ROLES, method="POST")
def dating(request: HttpRequest, study: Study) -> HttpResponse:
    data = _body(request)
    d = services.set_gestational_dating(
        study=study,
        basis=data.get("basis"),
        version=data.get("version"),
        ga_weeks=data.get("ga_weeks"),
        lmp=data.get("lmp"),
        comment=data.get("comment"),
        user=request.user,
        actor=request,
    )
    return JsonResponse(
        {
            "ok": True,
            "version": d.version,
            "ga_days": d.ga_days,
            "ga_weeks_days": d.ga_weeks_days,
            "exam_status": study.status,
        }
    )


@api(*REVIEW_ROLES)
def summary(request: HttpRequest, study: Study) -> HttpResponse:
    s = services.exam_summary(study)
    exam_services.audit(request, AuditEvent.Action.VIEW, study, "sign-off summary")
    return JsonResponse({"summary": s, "content_hash": services.content_hash(s)})


@api(*REVIEW_ROLES, method="POST")
def sign(request: HttpRequest, study: Study) -> HttpResponse:
    data = _body(request)
    signoff = services.sign_exam(
        study=study,
        user=request.user,
        password=data.get("password"),
        expected_hash=data.get("content_hash"),
        actor=request,
    )
    return JsonResponse(
        {
            "ok": True,
            "sequence": signoff.sequence,
            "content_hash": signoff.content_hash,
            "exam_status": study.status,
        }
    )


@api(*REVIEW_ROLES, method="POST")
def amend(request: HttpRequest, study: Study) -> HttpResponse:
    data = _body(request)
    amendment = services.amend_exam(
        study=study, user=request.user, reason=data.get("reason"), actor=request
    )
    return JsonResponse({"ok": True, "amendment": amendment.pk, "exam_status": study.status})
