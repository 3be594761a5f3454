"""Rubric administration: a rubric version used by a grade is read-only; change it by the action
"Create a new version", which copies it (criteria included) as the next, active version."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from webapp.teaching import services
from webapp.teaching.models import Grade, Rubric, RubricCriterion


class RubricCriterionInline(admin.TabularInline):
    model = RubricCriterion
    extra = 0
    fields = ("order", "plane", "key", "wording", "points", "protocol")

    def _frozen(self, obj: Rubric | None) -> bool:
        return obj is not None and obj.is_used

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._frozen(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._frozen(obj) and super().has_delete_permission(request, obj)


@admin.register(Rubric)
class RubricAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "active", "grades_count", "created_by", "created_at")
    list_filter = ("name", "active")
    inlines = (RubricCriterionInline,)
    actions = ("create_new_version",)

    @admin.display(description="grades")
    def grades_count(self, obj: Rubric) -> int:
        return obj.grades.count()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is not None and obj.is_used:
            return ("name", "version", "reference", "created_by", "created_at")
        return ("created_by", "created_at")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not (obj is not None and obj.is_used) and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Rubric, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Create a new version (copy criteria; the copy becomes active)")
    def create_new_version(self, request: HttpRequest, queryset: Any) -> None:
        for rubric in queryset:
            copy = services.new_rubric_version(rubric=rubric, created_by=request.user)
            self.message_user(
                request, f"{copy} created from version {rubric.version}", messages.SUCCESS
            )


@admin.register(Grade)
class GradeAdmin(admin.ModelAdmin):
    list_display = ("id", "study", "trainee", "supervisor", "round", "rubric", "submitted_at")
    list_filter = ("round", "rubric")

    # Grades are records of who judged what; they are read here, never edited.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
