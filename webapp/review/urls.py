"""Review pages and the exam page's JSON API, under /review/."""

from django.urls import path

from webapp.review import views

app_name = "review"

urlpatterns = [
    path("", views.worklist_page, name="worklist"),
    path("signed/", views.signed_page, name="signed"),
    path("next/", views.next_exam, name="next"),
    path("audit/", views.audit_page, name="audit"),
    path("exams/<int:pk>/", views.exam_page, name="exam"),
    path("exams/<int:pk>/state", views.state, name="state"),
    path("exams/<int:pk>/preview", views.preview, name="preview"),
    path("exams/<int:pk>/decisions", views.decide, name="decide"),
    path("exams/<int:pk>/measurements", views.measure, name="measure"),
    path("exams/<int:pk>/relabel", views.relabel, name="relabel"),
    path("exams/<int:pk>/dating", views.dating, name="dating"),
    path("exams/<int:pk>/summary", views.summary, name="summary"),
    path("exams/<int:pk>/sign", views.sign, name="sign"),
    path("exams/<int:pk>/amend", views.amend, name="amend"),
]
