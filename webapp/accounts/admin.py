"""Django admin for users: administrators set each person's role and trainee flag here."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from webapp.accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "get_full_name", "role", "is_trainee", "is_active", "last_login")
    list_filter = ("role", "is_trainee", "is_active", "is_staff")
    search_fields = ("username", "first_name", "last_name", "email")
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Clinical role", {"fields": ("role", "is_trainee", "dicom_operator_name")}),
    )
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        ("Clinical role", {"fields": ("role", "is_trainee")}),
    )
