"""Report views: the exam's report panel (an HTML fragment), downloads, retry.

Every download is audited as an export. Access follows the exam's visibility rules
(``webapp.exams.dicomweb.visible_studies``).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from webapp.exams import dicomweb
from webapp.exams import services as exam_services
from webapp.exams.models import AuditEvent, Study
from webapp.reports import services
from webapp.reports.models import ReportDocument

RETRY_ROLES = ("obstetrician", "admin")


def _study(request: HttpRequest, pk: int) -> Study:
    return get_object_or_404(dicomweb.visible_studies(request.user), pk=pk)


@login_required
@require_GET
def report_panel(request: HttpRequest, study_pk: int) -> HttpResponse:
    study = _study(request, study_pk)
    exam_services.audit(request, AuditEvent.Action.VIEW, study, "report panel")
    context = services.panel(study)
    context["can_retry"] = request.user.has_role(*RETRY_ROLES)
    return render(request, "reports/panel.html", context)


@login_required
@require_GET
def download(request: HttpRequest, pk: int) -> HttpResponse:
    doc = get_object_or_404(ReportDocument.objects.select_related("study"), pk=pk)
    _study(request, doc.study_id)
    exam_services.audit(
        request,
        AuditEvent.Action.EXPORT,
        doc.study,
        f"download {doc.get_kind_display()} {doc.label} v{doc.version}".strip(),
    )
    name = doc.file.name.rsplit("/", 1)[-1]
    response = FileResponse(
        doc.file.open("rb"),
        content_type=doc.content_type,
        as_attachment=doc.kind != "pdf",
        filename=name,
    )
    response["X-Content-SHA256"] = doc.sha256
    return response


@login_required
@require_POST
def retry(request: HttpRequest, study_pk: int) -> HttpResponse:
    study = _study(request, study_pk)
    if not request.user.has_role(*RETRY_ROLES):
        raise PermissionDenied("only obstetricians and administrators may resend reports")
    writeback = request.POST.get("writeback")
    if writeback and writeback.isdigit():
        from webapp.reports.models import Writeback

        wb = get_object_or_404(Writeback, pk=int(writeback), document__study=study)
        services.retry_writeback(writeback_id=wb.pk, user=request.user)
    else:
        services.retry_generation(study=study)
    # Back to the page the panel was shown in (the review exam page fetches it), else the panel.
    back = request.POST.get("next") or request.META.get("HTTP_REFERER", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)
    return redirect("reports:panel", study_pk=study.pk)
