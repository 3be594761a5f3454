"""Admins manage PACS nodes here and can inspect exams and the ingest and audit logs."""

from django import forms
from django.contrib import admin

from webapp.exams.models import AuditEvent, IngestEvent, PacsNode, Patient, Study


class PacsNodeForm(forms.ModelForm):
    """The secrets are write-only: never sent back to the browser; left blank, they stay as
    stored; "clear" removes them."""

    password = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False)
    )
    bearer_token = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False)
    )
    clear_secrets = forms.BooleanField(required=False, label="Clear the stored password and token")

    class Meta:
        model = PacsNode
        fields = (
            "name",
            "dicomweb_url",
            "auth_type",
            "username",
            "password",
            "bearer_token",
            "ae_title",
            "timeout_seconds",
            "is_active",
        )

    def clean(self) -> dict:
        data = super().clean()
        for name in ("password", "bearer_token"):
            if data.get("clear_secrets"):
                data[name] = ""
            elif not data.get(name) and self.instance.pk:
                data[name] = getattr(self.instance, name)
        return data


@admin.register(PacsNode)
class PacsNodeAdmin(admin.ModelAdmin):
    form = PacsNodeForm
    list_display = ("name", "dicomweb_url", "auth_type", "ae_title", "is_active")


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("study_instance_uid", "patient", "study_date", "source", "status", "created_at")
    list_filter = ("status", "source")
    readonly_fields = ("status", "failure_reason", "status_changed_at")


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ("name", "patient_id", "issuer_of_patient_id", "birth_date")


@admin.register(IngestEvent)
class IngestEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "route", "file_name", "outcome", "reason", "peer", "user")
    list_filter = ("outcome", "route")

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("at", "username", "action", "object_type", "object_id", "ip_address")
    list_filter = ("action", "object_type")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
