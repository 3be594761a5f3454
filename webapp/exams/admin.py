"""Admins manage PACS nodes here and can inspect exams and the ingest and audit logs."""

from django.contrib import admin

from webapp.exams.models import AuditEvent, IngestEvent, PacsNode, Patient, Study


@admin.register(PacsNode)
class PacsNodeAdmin(admin.ModelAdmin):
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
