"""Users and their clinical roles."""

from __future__ import annotations

from typing import ClassVar

from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    SONOGRAPHER = "sonographer", "Sonographer"
    OBSTETRICIAN = "obstetrician", "Obstetrician"
    SUPERVISOR = "supervisor", "Supervisor"
    ADMIN = "admin", "Administrator"


class User(AbstractUser):
    """A person who signs in. One role per account; admins may also use the Django admin."""

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.SONOGRAPHER)
    is_trainee = models.BooleanField(
        default=False, help_text="Trainee sonographers' exams are graded by supervisors."
    )
    dicom_operator_name = models.CharField(
        max_length=320,
        blank=True,
        help_text="How the ultrasound machines write this sonographer in Operators' Name "
        "(0008,1070), e.g. DOE^JANE: exams arriving from a scanner or PACS are then theirs.",
    )

    @staticmethod
    def normalised_operator_name(value: str) -> str:
        """A DICOM person name compared as the scanners vary it: the first of several values,
        upper case, empty trailing components dropped ("Doe^Jane^^" = "DOE^JANE")."""
        first = value.split("\\")[0].strip().upper()
        return "^".join(part.strip() for part in first.split("^")).rstrip("^")

    def has_role(self, *roles: str) -> bool:
        return self.is_active and (self.role in roles or self.is_superuser)

    # The admin role is the site's administrator: full rights in the Django admin (users, PACS
    # nodes, model versions) without also having to be flagged superuser.
    def has_perm(self, perm: str, obj: object = None) -> bool:
        if self.is_active and self.role == Role.ADMIN:
            return True
        return super().has_perm(perm, obj)

    def has_module_perms(self, app_label: str) -> bool:
        if self.is_active and self.role == Role.ADMIN:
            return True
        return super().has_module_perms(app_label)

    class Meta(AbstractUser.Meta):
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["dicom_operator_name"],
                condition=~models.Q(dicom_operator_name=""),
                name="accounts_user_operator_name_unique",
                violation_error_message="Another user already has this DICOM operator name.",
            )
        ]

    def save(self, *args: object, **kwargs: object) -> None:
        self.dicom_operator_name = self.normalised_operator_name(self.dicom_operator_name)
        # Admins manage users, PACS nodes and model versions in the Django admin.
        if self.role == Role.ADMIN:
            self.is_staff = True
        super().save(*args, **kwargs)  # type: ignore[arg-type]
