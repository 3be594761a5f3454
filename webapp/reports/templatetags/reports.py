"""``{% load reports %}{% report_panel study %}``: the exam's report panel inside any exam page.

The same fragment is served alone at ``reports:panel`` (for pages that fetch it). Reads rows only;
the page that includes it audits its own view of the exam.
"""

from __future__ import annotations

from typing import Any

from django import template

from webapp.reports import services

register = template.Library()


@register.inclusion_tag("reports/panel.html", takes_context=True)
def report_panel(context: dict[str, Any], study: Any) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    data = services.panel(study)
    data["can_retry"] = bool(
        user and user.is_authenticated and user.has_role("obstetrician", "admin")
    )
    data["csrf_token"] = context.get("csrf_token")
    return data
