"""Quality criteria on phantom frames built to pass or fail each criterion.

The phantom's exact masks stand in for the segmentation models, and its structure masks stand in
for a detector ("oracle" probabilities 0.95 present / 0.05 absent): these tests check the criteria
logic end to end, not the models. Phantom results, not accuracy on real images.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from inference.femur import measure_femur
from inference.geometry import Ellipse
from inference.phantom.criteria import CRITERION_TRUTH as TRUTH
from inference.quality import PlaneEvidence, Verdict, assess_plane

phantom = pytest.importorskip("inference.phantom.generator")

MET, NOT_MET, NA = Verdict.MET, Verdict.NOT_MET, Verdict.NOT_ASSESSABLE
STRUCTURES = {
    "head": ("thalami", "cavum_septi_pellucidi", "cerebellum"),
    "abdomen": ("stomach", "umbilical_vein", "kidneys"),
}
TAXONOMY = {"head": "fetal_brain", "abdomen": "fetal_abdomen", "femur": "fetal_femur"}


def oracle(frame, name):
    mask = frame.masks.get(name)
    return 0.95 if mask is not None and mask.any() else 0.05


def evidence(frame, plane, *, ellipse_scale=1.0, fov_from_image=False):
    fov = None if fov_from_image else frame.fov
    if plane == "femur":
        mask = frame.masks["femur"]
        calipers = measure_femur(mask).end_points if mask.any() else None
        return PlaneEvidence(
            image=frame.image, fov=fov, structure_mask=mask, femur_calipers=calipers
        )
    e = frame.landmarks[plane]
    ellipse = Ellipse.from_axes(e.cx, e.cy, e.a * ellipse_scale, e.b * ellipse_scale, e.angle)
    masks = {k: frame.masks[k] for k in ("thalami", "ribs", "spine") if k in frame.masks}
    return PlaneEvidence(
        image=frame.image,
        fov=fov,
        structure_mask=frame.masks[plane],
        ellipse=ellipse,
        detections={name: oracle(frame, name) for name in STRUCTURES[plane]},
        masks=masks,
    )


def assess(plane, seed=3, **params):
    frame = phantom.make_frame(TAXONOMY[plane], seed=seed, **params)
    return frame, assess_plane(plane, evidence(frame, plane))


def test_standard_head_plane_meets_all_six():
    _, quality = assess("head", asymmetry=0.0, thalami=True, csp=True, cerebellum=False, fill=0.42)
    assert [r.verdict for r in quality.results] == [MET] * 6
    assert (quality.points_met, quality.points_assessable, quality.score) == (6, 6, 1.0)


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"asymmetry": 0.2}, "head.symmetric"),
        ({"thalami": False, "brain_plane": "trans_thalamic"}, "head.thalami_visible"),
        ({"csp": False}, "head.cavum_septi_pellucidi_visible"),
        ({"cerebellum": True}, "head.cerebellum_not_visible"),
        ({"fill": 0.2}, "head.fills_30pct"),
    ],
)
def test_head_frame_built_to_fail_one_criterion(params, key):
    base = {"asymmetry": 0.0, "thalami": True, "csp": True, "cerebellum": False, "fill": 0.42}
    frame, quality = assess("head", **(base | params))
    failed = quality.result(key)
    assert failed.verdict is NOT_MET, failed.rationale
    assert frame.criteria[TRUTH[key]] is False
    others = [r for r in quality.results if r.key != key and r.key != "head.symmetric"]
    assert all(r.verdict is MET for r in others), [(r.key, r.rationale) for r in others]


def test_head_without_thalami_or_midline_cannot_judge_symmetry():
    _, quality = assess("head", asymmetry=0.0, thalami=False, csp=True, fill=0.42)
    assert quality.result("head.symmetric").verdict is NA
    assert quality.points_assessable == 5


def test_ellipse_on_the_inner_skull_border_fails_the_calipers():
    frame = phantom.make_frame("fetal_brain", seed=3, fill=0.42)
    inner = frame.landmarks["skull_inner"]
    ev = evidence(frame, "head", ellipse_scale=inner.b / frame.landmarks["head"].b)
    quality = assess_plane("head", ev)
    assert quality.result("head.calipers_outer_skull").verdict is NOT_MET


def test_standard_abdomen_plane_and_each_failure():
    base = {
        "asymmetry": 0.0,
        "stomach": True,
        "umbilical_vein": True,
        "kidneys": False,
        "fill": 0.42,
    }
    _, quality = assess("abdomen", **base)
    assert [r.verdict for r in quality.results] == [MET] * 6
    for params, key in [
        ({"asymmetry": 0.2}, "abdomen.symmetric"),
        ({"stomach": False}, "abdomen.stomach_visible"),
        ({"umbilical_vein": False}, "abdomen.umbilical_vein_portal_sinus_visible"),
        ({"kidneys": True}, "abdomen.kidneys_not_visible"),
        ({"fill": 0.2}, "abdomen.fills_30pct"),
    ]:
        _, quality = assess("abdomen", **(base | params))
        assert quality.result(key).verdict is NOT_MET, (key, quality.result(key).rationale)
        assert quality.points_met == 5


def test_abdomen_calipers_off_the_skin_line_fail():
    frame = phantom.make_frame("fetal_abdomen", seed=4, fill=0.42)
    quality = assess_plane("abdomen", evidence(frame, "abdomen", ellipse_scale=0.9))
    assert quality.result("abdomen.calipers_skin_line").verdict is NOT_MET


def test_femur_plane_criteria():
    _, good = assess("femur", seed=2, angle_deg=15.0, fill=0.45, ends_visible=True)
    assert [r.verdict for r in good.results] == [MET] * 4
    _, steep = assess("femur", seed=2, angle_deg=60.0, fill=0.3, ends_visible=True)
    assert steep.result("femur.angle_below_45").verdict is NOT_MET
    _, small = assess("femur", seed=2, angle_deg=15.0, fill=0.2, ends_visible=True)
    assert small.result("femur.fills_30pct").verdict is NOT_MET
    _, cut = assess("femur", seed=5, angle_deg=10.0, fill=0.45, ends_visible=False)
    assert cut.result("femur.both_ends_visible").verdict is NOT_MET


def test_agreement_with_the_generator_truth_on_assessable_criteria():
    rng = np.random.default_rng(7)
    agree = total = 0
    for seed in range(6):
        for plane in ("head", "abdomen", "femur"):
            if plane == "femur":
                params = {
                    "angle_deg": float(rng.choice([10, -25, 60, -70])),
                    "fill": float(rng.choice([0.2, 0.45])),
                    "ends_visible": bool(rng.random() < 0.8),
                }
            else:
                flags = (
                    ("thalami", "csp", "cerebellum")
                    if plane == "head"
                    else (
                        "stomach",
                        "umbilical_vein",
                        "kidneys",
                    )
                )
                params = {
                    f: bool(rng.random() < (0.3 if f in {"cerebellum", "kidneys"} else 0.8))
                    for f in flags
                }
                params |= {
                    "asymmetry": float(rng.choice([0.0, 0.0, 0.15])),
                    "fill": float(rng.choice([0.2, 0.42])),
                }
            frame = phantom.make_frame(TAXONOMY[plane], seed=100 + seed, **params)
            quality = assess_plane(plane, evidence(frame, plane))
            for r in quality.results:
                if r.key in TRUTH and r.verdict is not NA:
                    total += 1
                    agree += (r.verdict is MET) == frame.criteria[TRUTH[r.key]]
    assert total >= 60
    assert agree / total >= 0.95


def test_fov_estimated_from_the_image_when_none_is_given():
    frame = phantom.make_frame("fetal_abdomen", seed=4, fill=0.42)
    quality = assess_plane("abdomen", evidence(frame, "abdomen", fov_from_image=True))
    fill = quality.result("abdomen.fills_30pct")
    assert fill.evidence["fov_source"] == "estimated from the image"
    assert fill.verdict in {MET, NOT_MET}
    assert math.isfinite(fill.evidence["ratio"])
