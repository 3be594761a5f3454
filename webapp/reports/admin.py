"""Read-only admin views of report generations, documents and write-backs.

Rows are made by the services only (a hand-made row would break the version chain or point at no
file); an admin resends a write-back from the exam's report panel.
"""

from typing import Any

from django.contrib import admin

from webapp.reports.models import ReportDocument, ReportGeneration, Writeback


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(ReportGeneration)
class ReportGenerationAdmin(ReadOnlyAdmin):
    list_display = ("study", "signoff", "status", "attempts", "created_at", "finished_at")
    list_filter = ("status",)


@admin.register(ReportDocument)
class ReportDocumentAdmin(ReadOnlyAdmin):
    list_display = ("study", "kind", "label", "version", "sop_instance_uid", "created_at")
    list_filter = ("kind",)


@admin.register(Writeback)
class WritebackAdmin(ReadOnlyAdmin):
    list_display = (
        "document",
        "status",
        "attempts",
        "last_attempt_at",
        "next_retry_at",
        "admins_notified_at",
        "last_error",
    )
    list_filter = ("status",)
