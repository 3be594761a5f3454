"""Known-answer tests for the biometry formulas (values from shared/reference/anchors.md 4(b), 4(c)).

Where anchors gives a test value it is quoted; "arithmetic" rows recompute the published equation by
hand (independently of the implementation) to catch coefficient slips like the ``0.0003*HC^2`` seen in
public code.
"""

from __future__ import annotations

import math

import pytest

from inference.biometry import (
    efw_centile_intergrowth,
    efw_hadlock1985,
    efw_intergrowth,
    ga_hadlock1984,
    ga_intergrowth,
    size_centile_intergrowth,
    size_mean_sd,
)
from inference.biometry.intergrowth import efw_lms

# --- INTERGROWTH-21st size standards: (measurement, GA weeks, mean mm, SD mm), anchors 4(c) --------
IG_SIZE_VECTORS = [
    ("hc", 20, 172.5, 7.44),
    ("bpd", 20, 48.4, 2.30),
    ("ac", 20, 147.7, 7.63),
    ("fl", 20, 31.3, 1.78),
    ("hc", 30, 278.4, 9.25),
    ("ac", 30, 253.8, 12.34),
    ("fl", 30, 55.5, 2.24),
]


@pytest.mark.parametrize(("measurement", "weeks", "mean", "sd"), IG_SIZE_VECTORS)
def test_intergrowth_size_standard_mean_and_sd(measurement, weeks, mean, sd):
    mu, sigma = size_mean_sd(measurement, weeks * 7)
    assert mu == pytest.approx(mean, abs=0.05)
    assert sigma == pytest.approx(sd, abs=0.005)


def test_intergrowth_hc_at_20_weeks_is_the_issue_target():
    mu, sigma = size_mean_sd("hc", 140)
    assert round(mu, 1) == 172.5
    assert round(sigma, 2) == 7.44


def test_size_centile_of_the_median_is_50_and_one_sd_is_84():
    mu, sigma = size_mean_sd("hc", 140)
    at_median = size_centile_intergrowth("hc", mu, 140)
    assert at_median.z == pytest.approx(0.0, abs=1e-9)
    assert at_median.centile == pytest.approx(50.0, abs=1e-6)
    plus_one = size_centile_intergrowth("hc", mu + sigma, 140)
    assert plus_one.z == pytest.approx(1.0, abs=1e-9)
    assert plus_one.centile == pytest.approx(84.134, abs=0.001)
    assert plus_one.flags == ()
    assert plus_one.formula.key == "centile.intergrowth21.hc"


def test_ofd_centile_is_computed_and_identified():
    result = size_centile_intergrowth("ofd", 60.0, 20 * 7)
    mu, sd = size_mean_sd("ofd", 140)
    assert result.expected_median == pytest.approx(mu)
    assert result.z == pytest.approx((60.0 - mu) / sd)
    assert "Occipito-frontal" in result.formula.name


def test_size_centile_outside_14_to_40_weeks_is_flagged_not_refused():
    result = size_centile_intergrowth("fl", 65.0, 41 * 7)
    assert math.isfinite(result.z)
    (flag,) = result.flags
    assert flag.code == "outside_validity_range"
    assert (flag.parameter, flag.low, flag.high) == ("ga_days", 98.0, 280.0)


def test_implausible_z_is_flagged():
    result = size_centile_intergrowth("hc", 300.0, 140)
    assert any(f.code == "extreme_z_score" for f in result.flags)


# --- EFW --------------------------------------------------------------------------------------------
def test_intergrowth_efw_test_vector_1499_g():
    result = efw_intergrowth(290, 260)
    assert result.value == pytest.approx(1499, abs=1)
    assert result.value == pytest.approx(1498.6, abs=0.1)  # anchors: "reproduced here: 1,498.6 g"
    assert result.unit == "g"
    assert result.formula.key == "efw.intergrowth21.hc_ac"
    assert result.flags == ()


@pytest.mark.parametrize(
    ("key", "inputs", "grams"),
    [
        ("bpd_hc_ac_fl", {"bpd_mm": 48, "hc_mm": 175, "ac_mm": 150, "fl_mm": 33}, 342),
        ("hc_ac_fl", {"hc_mm": 175, "ac_mm": 150, "fl_mm": 33}, 339),
        ("bpd_hc_ac_fl", {"bpd_mm": 82, "hc_mm": 295, "ac_mm": 280, "fl_mm": 62}, 1925),
        ("hc_ac_fl", {"hc_mm": 295, "ac_mm": 280, "fl_mm": 62}, 1913),
    ],
)
def test_hadlock_efw_anchor_vectors(key, inputs, grams):
    result = efw_hadlock1985(key, **inputs)
    assert result.value == pytest.approx(grams, abs=1.0)
    assert result.flags == ()


def test_hadlock_efw_arithmetic_for_the_other_1985_forms():
    ac, fl, bpd = 28.0, 6.2, 8.2
    expected_bpd_ac_fl = 10 ** (1.335 - 0.0034 * ac * fl + 0.0316 * bpd + 0.0457 * ac + 0.1623 * fl)
    expected_ac_fl = 10 ** (1.304 + 0.05281 * ac + 0.1938 * fl - 0.004 * ac * fl)
    assert efw_hadlock1985("bpd_ac_fl", bpd_mm=82, ac_mm=280, fl_mm=62).value == pytest.approx(
        expected_bpd_ac_fl, rel=1e-12
    )
    assert efw_hadlock1985("ac_fl", ac_mm=280, fl_mm=62).value == pytest.approx(
        expected_ac_fl, rel=1e-12
    )


def test_efw_identities_carry_cid_12014_codes():
    four = efw_hadlock1985("bpd_hc_ac_fl", bpd_mm=48, hc_mm=175, ac_mm=150, fl_mm=33).formula
    assert four.dicom_code is not None
    assert (four.dicom_code.scheme_designator, four.dicom_code.code_value) == ("LN", "11732-5")
    assert four.dicom_code.context_group == "CID 12014"
    three = efw_hadlock1985("hc_ac_fl", hc_mm=175, ac_mm=150, fl_mm=33).formula
    assert three.dicom_code.code_value == "11746-5"
    assert efw_intergrowth(290, 260).formula.dicom_code is None
    assert "INTERGROWTH" in efw_intergrowth(290, 260).formula.code_note


def test_efw_for_ga_median_has_centile_50():
    _lam, mu, _sigma = efw_lms(30 * 7)
    result = efw_centile_intergrowth(math.exp(mu), 30 * 7)
    assert result.z == pytest.approx(0.0, abs=1e-9)
    assert result.centile == pytest.approx(50.0, abs=1e-6)
    assert result.expected_median == pytest.approx(1396, abs=1)  # exp(M) at 30+0 weeks
    heavier = efw_centile_intergrowth(1600, 30 * 7)
    assert heavier.centile > 50.0
    assert heavier.flags == ()


def test_efw_centile_before_22_weeks_is_flagged():
    result = efw_centile_intergrowth(430, 20 * 7)
    (flag,) = result.flags
    assert flag.parameter == "ga_days"
    assert (flag.low, flag.high) == (154.0, 280.0)


# --- GA ---------------------------------------------------------------------------------------------
def test_intergrowth_ga_from_hc_175_mm_is_141_5_days():
    result = ga_intergrowth("hc", hc_mm=175)
    assert result.value == pytest.approx(141.5, abs=0.1)
    assert result.weeks_days == (20, 1)
    assert result.unit == "d"
    assert result.flags == ()


def test_intergrowth_ga_from_hc_and_fl_arithmetic():
    hc, fl = 175.0, 33.0
    expected = math.exp(0.03243 * math.log(hc) ** 2 + 0.001644 * fl * math.log(hc) + 3.813)
    result = ga_intergrowth("hc_fl", hc_mm=hc, fl_mm=fl)
    assert result.value == pytest.approx(expected, rel=1e-12)
    assert 140 < result.value < 145


HADLOCK_GA_VECTORS = [
    # key, inputs (mm), weeks computed by hand from the anchors equations (cm)
    ("bpd", {"bpd_mm": 48}, 9.54 + 1.482 * 4.8 + 0.1676 * 4.8**2),
    ("hc", {"hc_mm": 175}, 8.96 + 0.540 * 17.5 + 0.0003 * 17.5**3),
    ("ac", {"ac_mm": 150}, 8.14 + 0.753 * 15.0 + 0.0036 * 15.0**2),
    ("fl", {"fl_mm": 33}, 10.35 + 2.460 * 3.3 + 0.170 * 3.3**2),
    ("hc", {"hc_mm": 295}, 8.96 + 0.540 * 29.5 + 0.0003 * 29.5**3),
    (
        "bpd_hc_ac_fl",
        {"bpd_mm": 48, "hc_mm": 175, "ac_mm": 150, "fl_mm": 33},
        10.85 + 0.06 * 17.5 * 3.3 + 0.67 * 4.8 + 0.168 * 15.0,
    ),
    (
        "hc_ac_fl",
        {"hc_mm": 175, "ac_mm": 150, "fl_mm": 33},
        10.33 + 0.031 * 17.5 * 3.3 + 0.361 * 17.5 + 0.0298 * 15.0 * 3.3,
    ),
    (
        "bpd_ac_fl",
        {"bpd_mm": 48, "ac_mm": 150, "fl_mm": 33},
        10.61 + 0.175 * 4.8 * 3.3 + 0.297 * 15.0 + 0.71 * 3.3,
    ),
    ("ac_fl", {"ac_mm": 150, "fl_mm": 33}, 10.47 + 0.442 * 15.0 + 0.314 * 3.3**2 - 0.0121 * 3.3**3),
    ("hc_ac", {"hc_mm": 175, "ac_mm": 150}, 10.31 + 0.012 * 17.5**2 + 0.385 * 15.0),
    ("bpd_fl", {"bpd_mm": 48, "fl_mm": 33}, 10.5 + 0.197 * 4.8 * 3.3 + 0.95 * 3.3 + 0.73 * 4.8),
]


@pytest.mark.parametrize(("key", "inputs", "weeks"), HADLOCK_GA_VECTORS)
def test_hadlock_1984_ga(key, inputs, weeks):
    result = ga_hadlock1984(key, **inputs)
    assert result.weeks == pytest.approx(weeks, rel=1e-12)
    assert result.value == pytest.approx(weeks * 7, rel=1e-12)


def test_hadlock_ga_rounded_values_for_a_20_week_fetus():
    # The same fetus by every single-parameter equation: 20.0-20.5 weeks.
    assert round(ga_hadlock1984("hc", hc_mm=175).weeks, 2) == 20.02
    assert round(ga_hadlock1984("bpd", bpd_mm=48).weeks, 2) == 20.52
    assert ga_hadlock1984("ac", ac_mm=150).weeks == pytest.approx(20.245, abs=0.001)
    assert round(ga_hadlock1984("fl", fl_mm=33).weeks, 2) == 20.32


def test_hadlock_ga_codes_are_cid_12013():
    codes = {
        key: ga_hadlock1984(key, **inputs).formula.dicom_code
        for key, inputs, _ in HADLOCK_GA_VECTORS
    }
    assert codes["bpd"].code_value == "11902-4"
    assert codes["hc"].code_value == "11932-1"
    assert codes["ac"].code_value == "11892-7"
    assert codes["fl"].code_value == "11920-6"
    assert {c.context_group for k, c in codes.items() if c} == {"CID 12013"}
    assert codes["bpd_hc_ac_fl"] is None  # no code in the value set: said, not invented
    result = ga_hadlock1984("hc_ac", hc_mm=175, ac_mm=150)
    assert "no code" in result.formula.code_note


def test_hadlock_ga_below_14_weeks_is_flagged_with_the_range():
    result = ga_hadlock1984("fl", fl_mm=8)
    assert result.weeks < 14
    (flag,) = result.flags
    assert flag.parameter == "fl_mm"
    assert flag.high > 70  # the 42-week end of the FL range
    assert "14-42" in flag.message
    assert "extrapolation" in flag.message


def test_multi_parameter_ga_out_of_range_flags_inputs_and_result():
    result = ga_hadlock1984("hc_ac", hc_mm=60, ac_mm=50)
    params = {f.parameter for f in result.flags}
    assert params == {"hc_mm", "ac_mm", "ga_days"}


def test_intergrowth_ga_late_in_pregnancy_is_flagged():
    result = ga_intergrowth("hc", hc_mm=320)
    assert result.value > 181
    assert result.flags[0].parameter == "hc_mm"


# --- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "why"),
    [
        (-5.0, "must be positive"),
        (0.0, "must be positive"),
        (float("nan"), "NaN"),
        (float("inf"), "finite"),
        (5000.0, "not a plausible"),
        ("abc", "not a number"),
        (None, "missing measurement"),
    ],
)
def test_bad_hc_raises_naming_the_parameter(value, why):
    with pytest.raises(ValueError, match=why) as info:
        ga_intergrowth("hc", hc_mm=value)
    assert str(info.value).startswith("hc_mm:")


def test_missing_femur_for_a_femur_formula_names_it():
    with pytest.raises(ValueError, match=r"^fl_mm: missing measurement"):
        efw_hadlock1985("hc_ac_fl", hc_mm=175, ac_mm=150)


def test_bad_gestational_age_for_a_centile():
    with pytest.raises(ValueError, match=r"^ga_days: .*must be positive"):
        size_centile_intergrowth("hc", 175, -3)
    with pytest.raises(ValueError, match=r"^ga_days: .*not a plausible"):
        size_centile_intergrowth("hc", 175, 400)


def test_unknown_equation_is_refused():
    with pytest.raises(ValueError, match="unknown Hadlock 1984 GA equation"):
        ga_hadlock1984("crl", hc_mm=100)
