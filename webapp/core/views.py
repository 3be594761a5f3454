"""The landing page of each role and the health endpoint."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from webapp.accounts.models import Role
from webapp.accounts.roles import require_role
from webapp.core.navigation import links_for, resolve
from webapp.core.readiness import probe_all

LOOPBACK = {"127.0.0.1", "::1"}

# Where each role starts: its real working page once that app is installed, else the
# placeholder landing page below (which lists the role's pages, built or not yet).
LANDING_URL_NAMES: dict[str, tuple[str, ...]] = {
    Role.SONOGRAPHER: ("exams:study_list", "core:sonographer_home"),
    Role.OBSTETRICIAN: ("review:worklist", "core:obstetrician_home"),
    Role.SUPERVISOR: ("teaching:grading_queue", "core:supervisor_home"),
    Role.ADMIN: ("core:admin_home",),
}


def landing_url(role: str) -> str:
    """The URL a user of ``role`` lands on after signing in."""
    for name in LANDING_URL_NAMES.get(role, ("core:sonographer_home",)):
        url = resolve(name)
        if url is not None:
            return url
    return resolve("core:sonographer_home") or "/"


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each user to their role's start page (signing in lands here)."""
    return redirect(landing_url(request.user.role))


def _landing(request: HttpRequest, role: str, template: str) -> HttpResponse:
    return render(request, template, {"role_links": links_for(role, include_missing=True)})


@require_role(Role.SONOGRAPHER)
def sonographer_home(request: HttpRequest) -> HttpResponse:
    return _landing(request, Role.SONOGRAPHER, "core/landing_sonographer.html")


@require_role(Role.OBSTETRICIAN)
def obstetrician_home(request: HttpRequest) -> HttpResponse:
    return _landing(request, Role.OBSTETRICIAN, "core/landing_obstetrician.html")


@require_role(Role.SUPERVISOR)
def supervisor_home(request: HttpRequest) -> HttpResponse:
    return _landing(request, Role.SUPERVISOR, "core/landing_supervisor.html")


@require_role(Role.ADMIN)
def admin_home(request: HttpRequest) -> HttpResponse:
    return _landing(request, Role.ADMIN, "core/landing_admin.html")


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Database, broker and worker reachability as JSON: 200 when all answer, else 503.

    Open to anonymous callers (load balancers, monitoring). Each part's ``detail`` (which host,
    which error; never a password) goes only to staff and to callers on the loopback interface.
    """
    probes = probe_all()
    healthy = all(probe.ok for probe in probes)
    # Details name hosts and databases: for staff and local monitoring only.
    detailed = request.user.is_staff or request.META.get("REMOTE_ADDR") in LOOPBACK
    body = {
        "status": "ok" if healthy else "unavailable",
        "failing": [probe.name for probe in probes if not probe.ok],
        **{
            probe.name: {"ok": probe.ok, "detail": probe.detail} if detailed else {"ok": probe.ok}
            for probe in probes
        },
    }
    return JsonResponse(body, status=200 if healthy else 503)
