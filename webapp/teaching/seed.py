"""Version 1 of the grading rubric, frozen: Salomon 2006 (head 6, abdomen 6, femur 4 criteria,
one point each) with the keys and wording of inference.quality.rubric, plus one exam-completeness
item per protocol of inference.planes.taxonomy.

Used by the data migration and, when a database has been emptied (e.g. a flush between
transactional tests), re-created on first use. A test checks the rows still match
inference.quality.rubric.RUBRICS. Later changes are new rubric versions, never edits here.
"""

from __future__ import annotations

from typing import Any

NAME = "Salomon 2006 biometry image score"
REFERENCE = (
    "Salomon LJ, Bernard JP, Duyme M, et al. Feasibility and reproducibility of an image-scoring "
    "method for quality control of fetal biometry in the second trimester. Ultrasound Obstet "
    "Gynecol 2006;27:34-40 (criteria [V-impl], wording a paraphrase; see anchors.md 4(e)). "
    "Exam completeness per protocol: the UK audit's scan-completeness measure (anchors.md 1.5)."
)

# (plane, key, wording, points, order, protocol)
CRITERIA = [
    ("head", "head.symmetric", "Symmetrical plane", 1, 10, ""),
    ("head", "head.thalami_visible", "Plane showing the thalami", 1, 11, ""),
    ("head", "head.cavum_septi_pellucidi_visible", "Plane showing the cavum septi pellucidi", 1, 12, ""),
    ("head", "head.cerebellum_not_visible", "Cerebellum not visible", 1, 13, ""),
    ("head", "head.fills_30pct", "Head occupying more than 30 % of the image", 1, 14, ""),
    ("head", "head.calipers_outer_skull", "Calipers / ellipse correctly placed (outer skull border)", 1, 15, ""),
    ("abdomen", "abdomen.symmetric", "Symmetrical plane", 1, 20, ""),
    ("abdomen", "abdomen.stomach_visible", "Stomach bubble visible", 1, 21, ""),
    ("abdomen", "abdomen.umbilical_vein_portal_sinus_visible", "Umbilical vein at the level of the portal sinus visible", 1, 22, ""),
    ("abdomen", "abdomen.kidneys_not_visible", "Kidneys not visible", 1, 23, ""),
    ("abdomen", "abdomen.fills_30pct", "Abdomen occupying more than 30 % of the image", 1, 24, ""),
    ("abdomen", "abdomen.calipers_skin_line", "Calipers / ellipse correctly placed (skin line)", 1, 25, ""),
    ("femur", "femur.both_ends_visible", "Both ends of the bone clearly visible", 1, 30, ""),
    ("femur", "femur.angle_below_45", "Angle to the horizontal below 45°", 1, 31, ""),
    ("femur", "femur.fills_30pct", "Femur occupying more than 30 % of the image", 1, 32, ""),
    ("femur", "femur.calipers_diaphysis_ends", "Calipers correctly placed (ends of the ossified diaphysis)", 1, 33, ""),
    ("exam", "exam.complete.biometry", "Every view of the biometry protocol saved (head, abdomen, femur)", 1, 90, "biometry"),
    ("exam", "exam.complete.mid_trimester", "Every view of the mid-trimester protocol saved", 1, 91, "mid_trimester"),
]  # fmt: skip


def seed_v1(rubric_model: Any, criterion_model: Any) -> Any:
    """Create version 1 (and its criteria) unless it exists; returns the Rubric row. Works with
    the real models and with a migration's historical ones."""
    rubric, created = rubric_model.objects.get_or_create(
        name=NAME, version=1, defaults={"active": True, "reference": REFERENCE, "note": "seed"}
    )
    if created:
        criterion_model.objects.bulk_create(
            criterion_model(
                rubric=rubric, plane=p, key=k, wording=w, points=pts, order=o, protocol=proto
            )
            for p, k, w, pts, o, proto in CRITERIA
        )
    return rubric
