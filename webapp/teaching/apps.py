from django.apps import AppConfig


class TeachingConfig(AppConfig):
    name = "webapp.teaching"
    label = "teaching"
    verbose_name = "Teaching (supervisor grading)"
