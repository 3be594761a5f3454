"""Teaching pages under /teaching/: grading queue and pages, agreement, feedback, dashboards."""

from django.urls import path

from webapp.teaching import views

app_name = "teaching"

urlpatterns = [
    path("", views.grading_queue, name="grading_queue"),
    path("exams/<int:study_id>/grade/", views.grade_exam, name="grade_exam"),
    path("exams/<int:study_id>/adjudicate/", views.adjudicate_exam, name="adjudicate_exam"),
    path("agreement/", views.agreement_page, name="agreement"),
    path("feedback/", views.my_feedback, name="my_feedback"),
    path("trainees/", views.trainee_list, name="trainees"),
    path("trainees/<int:user_id>/feedback/", views.trainee_feedback_page, name="trainee_feedback"),
    path("dashboard/<str:who>/", views.dashboard_page, name="dashboard"),
    path("dashboard/<str:who>/plot.png", views.dashboard_plot, name="dashboard_plot"),
    path("dashboard/<str:who>/data.csv", views.dashboard_export, name="dashboard_csv"),
]
