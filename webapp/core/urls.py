from django.urls import path

from webapp.core import views

app_name = "core"

urlpatterns = [
    path("", views.home, name="home"),
    path("home/sonographer/", views.sonographer_home, name="sonographer_home"),
    path("home/obstetrician/", views.obstetrician_home, name="obstetrician_home"),
    path("home/supervisor/", views.supervisor_home, name="supervisor_home"),
    path("home/admin/", views.admin_home, name="admin_home"),
    path("health/", views.health, name="health"),
]
