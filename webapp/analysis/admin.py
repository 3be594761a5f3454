"""Admin: model versions (activate / deactivate, model cards) and analysis runs (read-only)."""

from django.contrib import admin

from webapp.analysis.models import AnalysisBatch, AnalysisRun, ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "short_sha", "task", "is_active", "created_at")
    list_filter = ("name", "is_active")
    search_fields = ("name", "version", "weights_sha256")
    readonly_fields = ("name", "version", "weights_sha256", "weights_path", "task", "created_at")
    fields = (
        "name",
        "version",
        "weights_sha256",
        "weights_path",
        "task",
        "is_active",
        "model_card_path",
        "model_card",
        "created_at",
    )

    @admin.display(description="SHA-256")
    def short_sha(self, obj: ModelVersion) -> str:
        return obj.weights_sha256[:12]


class BatchInline(admin.TabularInline):
    model = AnalysisBatch
    extra = 0
    can_delete = False
    fields = ("instance", "first_frame", "last_frame", "status", "attempts", "frames_failed")
    readonly_fields = fields


@admin.register(AnalysisRun)
class AnalysisRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "study",
        "status",
        "stage",
        "frames_done",
        "frames_total",
        "frames_failed",
        "trigger",
        "queued_at",
        "finished_at",
    )
    list_filter = ("status", "stage", "trigger", "protocol")
    search_fields = ("study__study_instance_uid", "study__accession_number")
    raw_id_fields = ("study",)
    inlines = (BatchInline,)
    readonly_fields = [
        f.name for f in AnalysisRun._meta.get_fields() if f.concrete and not f.many_to_many
    ] + ["model_versions"]

    def has_add_permission(self, request: object) -> bool:
        return False
