"""Which of the phantom's truth flags (``PhantomFrame.criteria``) answers each quality criterion.

Criteria without a generator truth (the caliper criteria) are absent: they cannot be scored on
the phantom.
"""

from __future__ import annotations

#: rubric criterion key (inference.quality.rubric) → the generator's truth flag
CRITERION_TRUTH: dict[str, str] = {
    "head.symmetric": "symmetric",
    "head.thalami_visible": "thalami_visible",
    "head.cavum_septi_pellucidi_visible": "cavum_septi_pellucidi_visible",
    "head.cerebellum_not_visible": "cerebellum_not_visible",
    "head.fills_30pct": "head_over_30pct",
    "abdomen.symmetric": "symmetric",
    "abdomen.stomach_visible": "stomach_visible",
    "abdomen.umbilical_vein_portal_sinus_visible": "umbilical_vein_visible",
    "abdomen.kidneys_not_visible": "kidneys_not_visible",
    "abdomen.fills_30pct": "abdomen_over_30pct",
    "femur.both_ends_visible": "both_ends_visible",
    "femur.angle_below_45": "angle_under_45deg",
    "femur.fills_30pct": "femur_over_30pct",
}
