"""Top-level URL routes: one include() per app, in the order a reader meets them."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "sonoreview administration"
admin.site.site_title = "sonoreview admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("webapp.accounts.urls")),
    path("", include("webapp.exams.urls")),
    path("", include("webapp.analysis.urls")),
    path("review/", include("webapp.review.urls")),
    path("", include("webapp.reports.urls")),
    path("teaching/", include("webapp.teaching.urls")),
    path("", include("webapp.core.urls")),
]
