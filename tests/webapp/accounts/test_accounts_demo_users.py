"""``manage.py create_demo_users``: one account per role, printed logins, idempotent."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from webapp.accounts.models import User

pytestmark = pytest.mark.django_db

EXPECTED = {
    "sono": ("sonographer", False, False),
    "trainee": ("sonographer", True, False),
    "obstetrician": ("obstetrician", False, False),
    "supervisor": ("supervisor", False, False),
    "admin": ("admin", False, True),
}


def run(**options) -> str:
    out = StringIO()
    call_command("create_demo_users", stdout=out, **options)
    return out.getvalue()


def test_creates_one_user_per_role_with_working_logins() -> None:
    output = run(force=True)
    users = {u.username: (u.role, u.is_trainee, u.is_superuser) for u in User.objects.all()}
    assert users == EXPECTED
    for username in EXPECTED:
        assert authenticate(username=username, password=f"{username}-demo") is not None
        assert f"{username:<13} password {username}-demo" in output
    assert "[created]" in output and "[reset]" not in output
    assert User.objects.get(username="admin").is_staff is True


def test_second_run_resets_instead_of_duplicating() -> None:
    run(force=True)
    user = User.objects.get(username="obstetrician")
    user.role = "sonographer"
    user.set_password("changed")
    user.save()

    output = run(force=True)

    assert User.objects.count() == 5
    assert output.count("[reset]") == 5
    user.refresh_from_db()
    assert user.role == "obstetrician"
    assert authenticate(username="obstetrician", password="obstetrician-demo") is not None


def test_refuses_in_production_mode_without_force(settings) -> None:
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="refusing to create demo accounts"):
        run()
    assert User.objects.count() == 0
