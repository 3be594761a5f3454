"""Create (or reset) one demo account per role and print the logins.

Idempotent: a second run finds the same accounts and resets their role and password. Refuses in
production mode, where well-known passwords must never exist, unless ``--force`` is given.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from webapp.accounts.models import Role, User

# username, role, trainee, superuser, display name
DEMO_USERS: tuple[tuple[str, str, bool, bool, str], ...] = (
    ("sono", Role.SONOGRAPHER, False, False, "Sam Sonographer"),
    ("trainee", Role.SONOGRAPHER, True, False, "Tess Trainee"),
    ("obstetrician", Role.OBSTETRICIAN, False, False, "Olu Obstetrician"),
    ("supervisor", Role.SUPERVISOR, False, False, "Sue Supervisor"),
    ("admin", Role.ADMIN, False, True, "Ada Admin"),
)


def demo_password(username: str) -> str:
    return f"{username}-demo"


class Command(BaseCommand):
    help = "Create one demo user per role (sono, trainee, obstetrician, supervisor, admin)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Also run in production mode (creates accounts with well-known passwords).",
        )

    @transaction.atomic
    def handle(self, *args: Any, force: bool = False, **options: Any) -> None:
        if getattr(settings, "PRODUCTION", False) and not force:
            raise CommandError(
                "refusing to create demo accounts with well-known passwords in production mode "
                "(set SONOREVIEW_DEMO=1, or pass --force on a throw-away database)"
            )
        rows = []
        for username, role, trainee, superuser, full_name in DEMO_USERS:
            first, last = full_name.split(" ", 1)
            user, created = User.objects.get_or_create(username=username)
            user.role = role
            user.is_trainee = trainee
            user.is_superuser = superuser
            user.is_active = True
            user.first_name, user.last_name = first, last
            user.set_password(demo_password(username))
            user.save()
            label = Role(role).label + (" (trainee)" if trainee else "")
            rows.append(
                (username, demo_password(username), label, "created" if created else "reset")
            )
        self.stdout.write("Demo logins (development only):")
        for username, password, label, state in rows:
            self.stdout.write(f"  {username:<13} password {password:<18} {label:<24} [{state}]")
