"""Seed version 1 of the grading rubric (data frozen in webapp.teaching.seed)."""

from django.db import migrations

from webapp.teaching.seed import NAME, seed_v1


def seed(apps, schema_editor):
    seed_v1(apps.get_model("teaching", "Rubric"), apps.get_model("teaching", "RubricCriterion"))


def unseed(apps, schema_editor):
    Rubric = apps.get_model("teaching", "Rubric")
    Rubric.objects.filter(name=NAME, version=1, grades__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("teaching", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
