"""Template context shared by every page: the signed-in user's role navigation."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from webapp.core.navigation import links_for


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    links = links_for(user.role) if user is not None and user.is_authenticated else []
    return {"nav_links": links, "demo_mode": not getattr(settings, "PRODUCTION", True)}
