"""Exam pages (list, detail, upload, PACS pull) and the DICOMweb endpoints the viewer loads from.

Views parse the request, call one service and render. Every response carrying patient data is
audited; frame and rendered-frame requests of one instance by one user are audited once per
``FRAME_AUDIT_WINDOW_S`` (a cine is 100+ frame requests; one row per look is what an auditor
needs).
"""

from __future__ import annotations

import json
import logging
from datetime import date
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.accounts.roles import require_role
from webapp.exams import dicomweb, services
from webapp.exams.dicomio import DicomProblem
from webapp.exams.models import (
    AuditEvent,
    ExamSource,
    IngestEvent,
    Instance,
    PacsNode,
    Series,
    Study,
)

log = logging.getLogger(__name__)

UPLOAD_ROLES = ("sonographer", "obstetrician", "admin")
FRAME_AUDIT_WINDOW_S = 300
DICOM_JSON = "application/dicom+json"


def _dicomweb_auth(view: Any) -> Any:
    """Login required, answered with 401 (not a login redirect) for API clients."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return JsonResponse({"error": "sign in required"}, status=401)
        return view(request, *args, **kwargs)

    return wrapped


def _not_found(what: str) -> JsonResponse:
    return JsonResponse({"error": f"{what} not found"}, status=404)


def _base(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _audit_once(request: HttpRequest, instance: Instance, kind: str) -> None:
    key = f"exams-audit:{request.user.pk}:{instance.pk}:{kind.replace(' ', '_')}"
    if cache.add(key, 1, FRAME_AUDIT_WINDOW_S):
        services.audit(request, AuditEvent.Action.VIEW, instance, kind)


# --------------------------------------------------------------------------------------------
# DICOMweb (WADO-RS / QIDO-RS subset)
# --------------------------------------------------------------------------------------------


def _dicom_json_response(document: Any) -> HttpResponse:
    return HttpResponse(json.dumps(document), content_type=DICOM_JSON)


@require_GET
@_dicomweb_auth
def study_metadata(request: HttpRequest, study_uid: str) -> HttpResponse:
    study = dicomweb.visible_studies(request.user).filter(study_instance_uid=study_uid).first()
    if study is None:
        return _not_found("study")
    base = _base(request)
    documents = _metadata_documents(base, dicomweb.study_instances(study))
    services.audit(request, AuditEvent.Action.VIEW, study, "DICOMweb study metadata")
    return _dicom_json_response(documents)


def _metadata_documents(base: str, instances: Any) -> list[dict[str, Any]]:
    documents = []
    for instance in instances:
        try:
            documents.append(
                dicomweb.instance_metadata(
                    instance, base_url=dicomweb.instance_base_url(base, instance)
                )
            )
        except DicomProblem as exc:  # one unreadable file must not hide the rest of the exam
            log.warning("metadata of %s left out: %s", instance.sop_instance_uid, exc)
    return documents


def _series(request: HttpRequest, study_uid: str, series_uid: str) -> Series | None:
    return (
        Series.objects.select_related("study")
        .filter(
            series_instance_uid=series_uid,
            study__study_instance_uid=study_uid,
            study__in=dicomweb.visible_studies(request.user),
        )
        .first()
    )


@require_GET
@_dicomweb_auth
def study_series(request: HttpRequest, study_uid: str) -> HttpResponse:
    study = dicomweb.visible_studies(request.user).filter(study_instance_uid=study_uid).first()
    if study is None:
        return _not_found("study")
    services.audit(request, AuditEvent.Action.VIEW, study, "DICOMweb series search")
    return _dicom_json_response([dicomweb.series_qido(s) for s in study.series.all()])


@require_GET
@_dicomweb_auth
def series_metadata(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponse:
    series = _series(request, study_uid, series_uid)
    if series is None:
        return _not_found("series")
    base = _base(request)
    documents = _metadata_documents(base, dicomweb.series_instances(series))
    services.audit(request, AuditEvent.Action.VIEW, series, "DICOMweb series metadata")
    return _dicom_json_response(documents)


@require_GET
@_dicomweb_auth
def series_instances(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponse:
    series = _series(request, study_uid, series_uid)
    if series is None:
        return _not_found("series")
    services.audit(request, AuditEvent.Action.VIEW, series, "DICOMweb instance search")
    return _dicom_json_response(
        [dicomweb.instance_qido(i) for i in dicomweb.series_instances(series)]
    )


@require_GET
@_dicomweb_auth
def instance_metadata(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str
) -> HttpResponse:
    instance = dicomweb.find_instance(
        request.user, sop_uid, study_uid=study_uid, series_uid=series_uid
    )
    if instance is None:
        return _not_found("instance")
    try:
        document = dicomweb.instance_metadata(
            instance, base_url=dicomweb.instance_base_url(_base(request), instance)
        )
    except DicomProblem as exc:
        return JsonResponse({"error": str(exc)}, status=422)
    _audit_once(request, instance, "DICOMweb instance metadata")
    return _dicom_json_response([document])


@require_GET
@_dicomweb_auth
def instance_frames(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str, frames: str
) -> HttpResponse:
    instance = dicomweb.find_instance(
        request.user, sop_uid, study_uid=study_uid, series_uid=series_uid
    )
    if instance is None:
        return _not_found("instance")
    try:
        numbers = dicomweb.parse_frame_list(frames, instance.number_of_frames)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    try:
        wanted = dicomweb.requested_transfer_syntax(request.headers.get("Accept", ""))
        parts = dicomweb.frame_parts(instance, numbers, transfer_syntax=wanted)
    except dicomweb.NotAcceptable as exc:
        return JsonResponse({"error": str(exc)}, status=406)
    except (DicomProblem, OSError) as exc:
        return JsonResponse({"error": f"frame cannot be read: {exc}"}, status=422)
    body, content_type = dicomweb.multipart_body(parts)
    _audit_once(request, instance, "DICOMweb frames")
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
@_dicomweb_auth
def instance_retrieve(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str
) -> HttpResponse:
    instance = dicomweb.find_instance(
        request.user, sop_uid, study_uid=study_uid, series_uid=series_uid
    )
    if instance is None:
        return _not_found("instance")
    body, content_type = dicomweb.instance_file_part(instance)
    services.audit(request, AuditEvent.Action.EXPORT, instance, "DICOMweb instance retrieve")
    return HttpResponse(body, content_type=content_type)


# --------------------------------------------------------------------------------------------
# Files and rendered images for pages
# --------------------------------------------------------------------------------------------


@require_GET
@_dicomweb_auth
def instance_file(request: HttpRequest, sop_uid: str) -> HttpResponse:
    """The stored Part 10 file (for Cornerstone's ``wadouri:`` loader and downloads)."""
    instance = dicomweb.find_instance(request.user, sop_uid)
    if instance is None:
        return _not_found("instance")
    _audit_once(request, instance, "DICOM file")
    return FileResponse(
        services.instance_path(instance).open("rb"), content_type="application/dicom"
    )


@require_GET
@_dicomweb_auth
def rendered_frame(request: HttpRequest, sop_uid: str, number: int) -> HttpResponse:
    instance = dicomweb.find_instance(request.user, sop_uid)
    if instance is None:
        return _not_found("instance")
    size_text = request.GET.get("size", "")
    try:
        size = int(size_text) if size_text else None
        if size is not None and not 16 <= size <= 4096:
            raise ValueError
    except ValueError:
        return JsonResponse(
            {"error": "size must be a number of pixels from 16 to 4096"}, status=400
        )
    image_format = "jpeg" if request.GET.get("format", "png").lower() in ("jpeg", "jpg") else "png"
    try:
        data = dicomweb.rendered_frame(instance, number, size=size, image_format=image_format)
    except dicomweb.FrameNotFound as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    except (DicomProblem, OSError) as exc:
        return JsonResponse({"error": f"frame cannot be rendered: {exc}"}, status=422)
    _audit_once(request, instance, "rendered frames")
    response = HttpResponse(data, content_type=f"image/{image_format}")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
@_dicomweb_auth
def thumbnail(request: HttpRequest, sop_uid: str) -> HttpResponse:
    instance = dicomweb.find_instance(request.user, sop_uid)
    if instance is None:
        return _not_found("instance")
    try:
        data = dicomweb.rendered_frame(instance, 1, size=128, image_format="jpeg")
    except (DicomProblem, OSError, dicomweb.FrameNotFound) as exc:
        return JsonResponse({"error": f"thumbnail cannot be rendered: {exc}"}, status=422)
    _audit_once(request, instance, "thumbnail")
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


@login_required
@require_GET
def study_list(request: HttpRequest) -> HttpResponse:
    studies = (
        dicomweb.visible_studies(request.user)
        .select_related("patient", "sonographer")
        .order_by("-created_at")[:200]
    )
    services.audit(request, AuditEvent.Action.VIEW, "study list", f"{len(studies)} studies")
    return render(request, "exams/study_list.html", {"studies": studies})


@login_required
@require_GET
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(
        dicomweb.visible_studies(request.user).select_related("patient", "pacs_node"), pk=pk
    )
    series = study.series.prefetch_related("instances__us_regions", "instances__calibration")
    services.audit(request, AuditEvent.Action.VIEW, study, "exam page")
    return render(
        request,
        "exams/study_detail.html",
        {"study": study, "series_list": series, "dicomweb_root": _base(request) + "/dicomweb"},
    )


@require_role(*UPLOAD_ROLES)
@require_GET
def upload_page(request: HttpRequest) -> HttpResponse:
    # Recent refusals: the user's own uploads; admins see every route (C-STORE and PACS too).
    rejections = IngestEvent.objects.filter(outcome="rejected").select_related("user")
    if not request.user.has_role("admin"):
        rejections = rejections.filter(user=request.user)
    return render(
        request,
        "exams/upload.html",
        {
            "max_file_gb": services.MAX_FILE_BYTES // 1024**3,
            "recent_rejections": rejections.order_by("-created_at")[:20],
        },
    )


@require_http_methods(["POST"])
def upload_api(request: HttpRequest) -> HttpResponse:
    """POST multipart ``files`` (DICOM, zip, PNG, JPEG) → JSON per-file results."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "sign in required"}, status=401)
    if not request.user.has_role(*UPLOAD_ROLES):
        return JsonResponse(
            {"error": "uploading exams is for sonographers, obstetricians and administrators"},
            status=403,
        )
    uploads = request.FILES.getlist("files")
    if not uploads:
        return JsonResponse({"error": "no files were sent (form field 'files')"}, status=400)
    results = services.ingest_batch(
        files=[(f.name, f) for f in uploads],
        route=ExamSource.UPLOAD,
        user=request.user,
        peer=request.META.get("REMOTE_ADDR", ""),
    )
    for study_id in {r.study_id for r in results if r.outcome == "stored" and r.study_id}:
        services.audit(request, AuditEvent.Action.CREATE, Study.objects.get(pk=study_id), "upload")
    payload = {
        "results": [r.as_dict() for r in results],
        "stored": sum(r.outcome == "stored" for r in results),
        "duplicates": sum(r.outcome == "duplicate" for r in results),
        "rejected": sum(r.outcome == "rejected" for r in results),
        "studies": sorted(
            {(r.study_id, r.study_instance_uid) for r in results if r.study_id},
        ),
    }
    payload["studies"] = [
        {"id": sid, "study_instance_uid": uid, "url": f"/exams/{sid}/"}
        for sid, uid in payload["studies"]
    ]
    return JsonResponse(payload, status=200)


def _parse_date(text: str, label: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{label} {text!r} is not a date (YYYY-MM-DD)") from exc


@require_role(*UPLOAD_ROLES)
@require_http_methods(["GET", "POST"])
def pacs_page(request: HttpRequest) -> HttpResponse:
    """Search a PACS (QIDO-RS) and import chosen studies (WADO-RS)."""
    services.ensure_configured_pacs_node()
    nodes = PacsNode.objects.filter(is_active=True).order_by("name")
    params = request.POST if request.method == "POST" else request.GET
    context: dict[str, Any] = {"nodes": nodes, "form": params, "found": None, "imported": None}
    node_name = params.get("node", "")
    node = (
        nodes.filter(name=node_name).first()
        if node_name
        else (nodes.first() if nodes.count() == 1 else None)
    )
    context["node"] = node
    if request.method == "POST":
        if node is None:
            context["error"] = "choose a PACS"
            return render(request, "exams/pacs.html", context, status=400)
        uids = request.POST.getlist("study")
        if not uids:
            context["error"] = "tick at least one study to import"
            return render(request, "exams/pacs.html", context, status=400)
        imported = []
        for uid in uids:
            try:
                results = services.import_study_from_pacs(
                    node=node, study_instance_uid=uid, user=request.user
                )
            except Exception as exc:  # the PACS is unreachable or answered an error
                results = [
                    services.record_rejection(
                        uid,
                        f"PACS {node.name} could not be queried ({exc})",
                        route=ExamSource.PACS,
                        user=request.user,
                        peer=node.name,
                    )
                ]
            imported.append({"study_instance_uid": uid, "results": results})
            study = Study.objects.filter(study_instance_uid=uid).first()
            if study is not None:
                services.audit(
                    request, AuditEvent.Action.CREATE, study, f"PACS pull from {node.name}"
                )
        context["imported"] = imported
        return render(request, "exams/pacs.html", context)
    if "search" in request.GET and node is not None:
        try:
            found = services.search_pacs(
                node=node,
                patient_name=request.GET.get("patient_name", "").strip(),
                patient_id=request.GET.get("patient_id", "").strip(),
                date_from=_parse_date(request.GET.get("date_from", ""), "from date"),
                date_to=_parse_date(request.GET.get("date_to", ""), "to date"),
                modality=request.GET.get("modality", "US").strip(),
            )
        except ValueError as exc:
            context["error"] = str(exc)
            return render(request, "exams/pacs.html", context, status=400)
        except Exception as exc:
            context["error"] = f"PACS {node.name} could not be searched ({exc})"
            return render(request, "exams/pacs.html", context, status=502)
        services.audit(
            request,
            AuditEvent.Action.VIEW,
            f"PACS {node.name} search",
            json.dumps(dict(request.GET.items()))[:500],
        )
        context["found"] = found
    return render(request, "exams/pacs.html", context)


@require_POST
@login_required
def user_calibration(request: HttpRequest, sop_uid: str) -> HttpResponse:
    """Enter a calibration (mm per pixel) for an image without DICOM calibration."""
    instance = dicomweb.find_instance(request.user, sop_uid)
    if instance is None:
        return _not_found("instance")
    try:
        mm_x = float(request.POST.get("mm_per_pixel_x", ""))
        mm_y = float(request.POST.get("mm_per_pixel_y", "") or mm_x)
        calibration = services.set_user_calibration(
            instance=instance,
            mm_per_pixel_x=mm_x,
            mm_per_pixel_y=mm_y,
            user=request.user,
            note=request.POST.get("note", ""),
        )
    except ValueError as exc:
        return HttpResponseBadRequest(
            json.dumps({"error": str(exc)}), content_type="application/json"
        )
    return JsonResponse(
        {
            "source": calibration.source,
            "mm_per_pixel_x": calibration.mm_per_pixel_x,
            "mm_per_pixel_y": calibration.mm_per_pixel_y,
        }
    )
