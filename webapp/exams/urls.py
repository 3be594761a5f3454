"""Exam pages under /exams/ and the DICOMweb subset under /dicomweb/ (see ``dicomweb.py``)."""

from django.urls import path

from webapp.exams import views

app_name = "exams"

_INSTANCE = "dicomweb/studies/<str:study_uid>/series/<str:series_uid>/instances/<str:sop_uid>"

urlpatterns = [
    path("exams/", views.study_list, name="study_list"),
    path("exams/<int:pk>/", views.study_detail, name="study_detail"),
    path("exams/upload/", views.upload_page, name="upload"),
    path("exams/api/upload", views.upload_api, name="upload_api"),
    path("exams/pacs/", views.pacs_page, name="pacs"),
    path("exams/instances/<str:sop_uid>/file", views.instance_file, name="instance_file"),
    path("exams/instances/<str:sop_uid>/thumbnail", views.thumbnail, name="thumbnail"),
    path(
        "exams/instances/<str:sop_uid>/frames/<int:number>/rendered",
        views.rendered_frame,
        name="rendered_frame",
    ),
    path(
        "exams/instances/<str:sop_uid>/calibration",
        views.user_calibration,
        name="user_calibration",
    ),
    path("dicomweb/studies/<str:study_uid>/metadata", views.study_metadata, name="study_metadata"),
    path("dicomweb/studies/<str:study_uid>/series", views.study_series, name="study_series"),
    path(
        "dicomweb/studies/<str:study_uid>/series/<str:series_uid>/metadata",
        views.series_metadata,
        name="series_metadata",
    ),
    path(
        "dicomweb/studies/<str:study_uid>/series/<str:series_uid>/instances",
        views.series_instances,
        name="series_instances",
    ),
    path(_INSTANCE, views.instance_retrieve, name="instance_retrieve"),
    path(f"{_INSTANCE}/metadata", views.instance_metadata, name="instance_metadata"),
    path(f"{_INSTANCE}/frames/<str:frames>", views.instance_frames, name="instance_frames"),
]
