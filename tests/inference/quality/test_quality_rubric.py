"""The Salomon 2006 rubric as data, and the plane score."""

from __future__ import annotations

import pytest

from inference.quality import RUBRICS, CriterionResult, Verdict, rubric_for, score_plane


def test_rubric_points_per_plane_match_salomon_2006():
    assert {p: r.max_points for p, r in RUBRICS.items()} == {"head": 6, "abdomen": 6, "femur": 4}
    for rubric in RUBRICS.values():
        keys = [c.key for c in rubric.criteria]
        assert len(keys) == len(set(keys))
        assert all(k.startswith(rubric.plane + ".") for k in keys)
        assert all(c.points == 1 for c in rubric.criteria)
        assert "Salomon" in rubric.reference and "[M]" in rubric.note


def test_rubric_criteria_in_order():
    assert [c.key for c in RUBRICS["head"].criteria] == [
        "head.symmetric",
        "head.thalami_visible",
        "head.cavum_septi_pellucidi_visible",
        "head.cerebellum_not_visible",
        "head.fills_30pct",
        "head.calipers_outer_skull",
    ]
    assert [c.key for c in RUBRICS["femur"].criteria] == [
        "femur.both_ends_visible",
        "femur.angle_below_45",
        "femur.fills_30pct",
        "femur.calipers_diaphysis_ends",
    ]
    assert RUBRICS["abdomen"].criterion("abdomen.kidneys_not_visible").structure == "kidneys"


def test_taxonomy_keys_map_to_rubrics():
    assert rubric_for("fetal_abdomen").plane == "abdomen"
    assert rubric_for("fetal_brain").plane == "head"
    with pytest.raises(ValueError, match="no Salomon 2006 rubric for plane 'fetal_thorax'"):
        rubric_for("fetal_thorax")


def results(rubric, verdicts):
    return [CriterionResult(c.key, v) for c, v in zip(rubric.criteria, verdicts, strict=True)]


def test_score_is_met_over_assessable_with_raw_points():
    rubric = RUBRICS["head"]
    m, n, na = Verdict.MET, Verdict.NOT_MET, Verdict.NOT_ASSESSABLE
    quality = score_plane(rubric, results(rubric, [m, m, n, na, m, na]))
    assert (quality.points_met, quality.points_assessable, quality.points_total) == (3, 4, 6)
    assert quality.score == pytest.approx(0.75)
    data = quality.to_dict()
    assert data["score"] == 0.75 and data["criteria"][3]["verdict"] == "not_assessable"


def test_nothing_assessable_gives_no_score():
    rubric = RUBRICS["femur"]
    quality = score_plane(rubric, results(rubric, [Verdict.NOT_ASSESSABLE] * 4))
    assert quality.score is None
    assert quality.points_assessable == 0


def test_every_criterion_must_be_judged_once():
    rubric = RUBRICS["femur"]
    partial = results(rubric, [Verdict.MET] * 4)[:3]
    with pytest.raises(ValueError, match=r"femur\.calipers_diaphysis_ends: criterion not judged"):
        score_plane(rubric, partial)
    with pytest.raises(ValueError, match=r"head\.symmetric: not a criterion of the femur rubric"):
        score_plane(rubric, [*partial, CriterionResult("head.symmetric", Verdict.MET)])
