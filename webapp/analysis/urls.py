"""Analysis endpoints: progress JSON (polled by the exam page and the worklist) and retry."""

from django.urls import path

from webapp.analysis import views

app_name = "analysis"

urlpatterns = [
    path("analysis/exams/<int:study_id>/progress.json", views.progress, name="progress"),
    path("analysis/progress.json", views.progress_many, name="progress_many"),
    path(
        "analysis/exams/<int:study_id>/completeness.json", views.completeness, name="completeness"
    ),
    path("analysis/exams/<int:study_id>/retry", views.retry, name="retry"),
]
