"""Requiring a clinical role for a view.

``require_role("obstetrician")`` on a function view, ``RoleRequiredMixin`` with
``required_roles = ("obstetrician",)`` on a class view. An anonymous visitor is sent to the login
page (and back afterwards); a signed-in user with another role gets the 403 page saying which
role the page is for and which one they have. Superusers pass every check.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from webapp.accounts.models import Role

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponse])


def _validate(roles: tuple[str, ...]) -> tuple[str, ...]:
    known = set(Role.values)
    unknown = [role for role in roles if role not in known]
    if not roles or unknown:
        # A typo here would lock everybody out (or in); fail when the module is imported.
        raise ValueError(f"require_role needs roles from {sorted(known)}, got {roles!r}")
    return roles


def role_label(role: str) -> str:
    """``"obstetrician"`` → ``"Obstetrician"`` (the label of the Role choice)."""
    return dict(Role.choices).get(role, role)


def denial_message(user: Any, roles: tuple[str, ...]) -> str:
    """The sentence shown on the 403 page."""
    wanted = " or ".join(role_label(role).lower() + "s" for role in roles)
    have = role_label(getattr(user, "role", "")).lower() or "no role"
    return (
        f"This page is for {wanted}. You are signed in as {user.get_username()} ({have}); "
        "ask an administrator if you need access."
    )


def check_role(request: HttpRequest, roles: tuple[str, ...]) -> HttpResponse | None:
    """A login redirect for anonymous users, raise PermissionDenied for the wrong role, else None."""
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not user.has_role(*roles):
        raise PermissionDenied(denial_message(user, roles))
    return None


def require_role(*roles: str) -> Callable[[ViewFunc], ViewFunc]:
    """Decorator: the view runs only for signed-in users holding one of ``roles``."""
    roles = _validate(roles)

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            denied = check_role(request, roles)
            if denied is not None:
                return denied
            return view(request, *args, **kwargs)

        wrapped.required_roles = roles  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


class RoleRequiredMixin:
    """Class-based-view twin of ``require_role``: set ``required_roles`` on the view class."""

    required_roles: tuple[str, ...] = ()

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        denied = check_role(request, _validate(tuple(self.required_roles)))
        if denied is not None:
            return denied
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
