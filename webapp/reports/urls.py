from django.urls import path

from webapp.reports import views

app_name = "reports"

urlpatterns = [
    path("exams/<int:study_pk>/reports/panel/", views.report_panel, name="panel"),
    path("exams/<int:study_pk>/reports/retry/", views.retry, name="retry"),
    path("reports/documents/<int:pk>/download/", views.download, name="download"),
]
