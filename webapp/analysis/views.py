"""Analysis progress and retry over HTTP (JSON), for the exam page and the worklist.

``GET /analysis/exams/<id>/progress.json`` → ``services.progress`` (status, stage, frames done /
total, failure reason, ``can_retry``); ``GET /analysis/progress.json?ids=1,2,3`` → the same for many
exams at once (one request per worklist refresh); ``GET /analysis/exams/<id>/completeness.json``
(``?protocol=biometry|mid_trimester``) → found / sub-optimal / missing views;
``POST /analysis/exams/<id>/retry`` re-queues a failed exam (JSON, or a redirect back for a plain
form post). Only exams the user may open are answered (404 otherwise). Polling is not audited
(it carries no patient data beyond the exam's id); a retry is.

A page polls like this (see docs/analysis.md)::

    async function poll(url, el) {
      const r = await fetch(url, {headers: {Accept: "application/json"}});
      const p = await r.json();
      el.textContent = p.run ? `${p.status_display}: ${p.run.frames_done}/${p.run.frames_total}` : p.status_display;
      if (["queued", "analysing", "received"].includes(p.status)) setTimeout(() => poll(url, el), 1000);
    }
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from webapp.analysis import services
from webapp.exams.dicomweb import visible_studies
from webapp.exams.models import AuditEvent, Study
from webapp.exams.services import audit

RETRY_ROLES = ("sonographer", "obstetrician", "admin")
MAX_IDS = 200


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _study(request: HttpRequest, study_id: int) -> Study | None:
    return visible_studies(request.user).filter(pk=study_id).first()


@require_GET
def progress(request: HttpRequest, study_id: int) -> HttpResponse:
    if not request.user.is_authenticated:
        return _error("sign in to see analysis progress", 401)
    study = _study(request, study_id)
    if study is None:
        return _error(f"no exam {study_id} that you may open", 404)
    return JsonResponse(services.progress(study=study))


@require_GET
def progress_many(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return _error("sign in to see analysis progress", 401)
    raw = [part for part in request.GET.get("ids", "").split(",") if part.strip()]
    if not raw:
        return _error("give the exams as ?ids=1,2,3", 400)
    if len(raw) > MAX_IDS:
        return _error(f"at most {MAX_IDS} exams per request, got {len(raw)}", 400)
    try:
        ids = sorted({int(part) for part in raw})
    except ValueError:
        return _error("ids must be whole numbers separated by commas", 400)
    studies = visible_studies(request.user).filter(pk__in=ids).distinct()
    return JsonResponse({"exams": {str(s.pk): services.progress(study=s) for s in studies}})


@require_GET
def completeness(request: HttpRequest, study_id: int) -> HttpResponse:
    if not request.user.is_authenticated:
        return _error("sign in to see the exam's planes", 401)
    study = _study(request, study_id)
    if study is None:
        return _error(f"no exam {study_id} that you may open", 404)
    try:
        data = services.completeness(study=study, protocol=request.GET.get("protocol") or None)
    except services.AnalysisRefused as exc:
        return _error(str(exc), 400)
    return JsonResponse(data)


@require_POST
def retry(request: HttpRequest, study_id: int) -> HttpResponse:
    wants_json = "application/json" in request.headers.get("Accept", "")
    if not request.user.is_authenticated:
        return _error("sign in to retry an analysis", 401)
    if not request.user.has_role(*RETRY_ROLES):
        return _error("retrying an analysis is for sonographers, obstetricians and admins", 403)
    study = _study(request, study_id)
    if study is None:
        return _error(f"no exam {study_id} that you may open", 404)
    try:
        run = services.retry_analysis(study_id=study.pk)
    except services.AnalysisRefused as exc:
        return _error(str(exc), 409)
    audit(request, AuditEvent.Action.UPDATE, study, f"analysis retried (run {run.pk})")
    study.refresh_from_db()
    if wants_json:
        return JsonResponse({"ok": True, "run_id": run.pk, **services.progress(study=study)})
    target = request.POST.get("next") or request.headers.get("Referer") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return redirect(target)
