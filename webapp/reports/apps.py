from django.apps import AppConfig


class ReportsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "webapp.reports"
    label = "reports"
    verbose_name = "Reports and PACS write-back"
