"""Percentage agreement and Cohen's kappa on hand-computed examples (pure functions)."""

from __future__ import annotations

import pytest

from webapp.teaching.agreement import agreement, cohen_kappa


def test_kappa_two_categories_hand_computed():
    # 10 images: both "met" 6, both "not met" 2, met/not met 1, not met/met 1.
    pairs = (
        [("met", "met")] * 6
        + [("not_met", "not_met")] * 2
        + [("met", "not_met"), ("not_met", "met")]
    )
    a = agreement(pairs)
    # p_o = 8/10 = 0.8; marginals 7/3 and 7/3 -> p_e = 0.7*0.7 + 0.3*0.3 = 0.58
    # kappa = (0.8 - 0.58) / (1 - 0.58) = 0.22 / 0.42 = 0.5238...
    assert a.pairs == 10 and a.agreeing == 8
    assert a.percent == pytest.approx(80.0)
    assert a.expected == pytest.approx(0.58)
    assert a.kappa == pytest.approx(0.22 / 0.42)
    assert round(a.kappa, 4) == 0.5238


def test_kappa_three_categories_hand_computed():
    pairs = [
        ("met", "met"),
        ("met", "met"),
        ("met", "not_met"),
        ("not_met", "not_met"),
        ("not_applicable", "not_applicable"),
    ]
    # p_o = 4/5; first 3/1/1, second 2/2/1 -> p_e = (3*2 + 1*2 + 1*1)/25 = 0.36
    # kappa = (0.8 - 0.36) / 0.64 = 0.6875
    assert cohen_kappa(pairs) == pytest.approx(0.6875)
    assert agreement(pairs).percent == pytest.approx(80.0)


def test_kappa_undefined_when_both_graders_use_one_category_and_zero_pairs():
    same = agreement([("met", "met")] * 4)
    assert same.percent == 100.0 and same.kappa is None
    assert agreement([]).pairs == 0 and agreement([]).kappa is None


def test_kappa_of_total_disagreement_is_negative():
    # p_o = 0; marginals 1/1 each way -> p_e = 0.5; kappa = -1
    assert cohen_kappa([("met", "not_met"), ("not_met", "met")]) == pytest.approx(-1.0)
