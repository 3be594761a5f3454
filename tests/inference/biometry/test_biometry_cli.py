"""The calculator command and compute_all, run as a user would: a subprocess printing one JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inference.biometry import compute_all, parse_ga_weeks
from inference.biometry.__main__ import main

REPO = Path(__file__).resolve().parents[3]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inference.biometry", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def by_key(rows: list[dict]) -> dict[str, dict]:
    return {row["formula"]["key"]: row for row in rows}


def test_cli_prints_one_json_object_with_every_estimate():
    proc = run_cli(
        "--bpd",
        "48",
        "--hc",
        "175",
        "--ac",
        "150",
        "--fl",
        "33",
        "--ofd",
        "60",
        "--ga-weeks",
        "20+0",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1  # one JSON object on one line
    out = json.loads(proc.stdout)
    ages = by_key(out["gestational_age"])
    assert len(ages) == 12  # 10 Hadlock 1984 forms + INTERGROWTH HC and HC+FL
    assert ages["ga.intergrowth21.hc"]["ga_days"] == pytest.approx(141.5, abs=0.1)
    assert ages["ga.intergrowth21.hc"]["ga_weeks_days"] == "20w1d"
    assert ages["ga.hadlock1984.hc"]["formula"]["dicom_code"]["code_value"] == "11932-1"
    weights = by_key(out["estimated_fetal_weight"])
    assert weights["efw.hadlock1985.bpd_hc_ac_fl"]["efw_g"] == pytest.approx(342, abs=1)
    assert weights["efw.hadlock1985.hc_ac_fl"]["efw_g"] == pytest.approx(339, abs=1)
    assert weights["efw.intergrowth21.hc_ac"]["unit"] == "g"
    centiles = by_key(out["centiles"])
    assert set(centiles) == {
        "centile.intergrowth21.hc",
        "centile.intergrowth21.bpd",
        "centile.intergrowth21.ac",
        "centile.intergrowth21.fl",
        "centile.intergrowth21.ofd",
        "centile.intergrowth21.efw",
    }
    assert centiles["centile.intergrowth21.hc"]["expected_median"] == pytest.approx(172.5, abs=0.05)
    assert centiles["centile.intergrowth21.hc"]["expected_sd"] == pytest.approx(7.44, abs=0.005)
    # EFW chart starts at 22 weeks: a flagged result, not a silent extrapolation.
    assert centiles["centile.intergrowth21.efw"]["flags"][0]["code"] == "outside_validity_range"
    assert out["inputs"]["ga_days"] == 140
    assert out["not_computed"] == []


def test_cli_intergrowth_efw_vector():
    out = json.loads(run_cli("--hc", "290", "--ac", "260").stdout)
    weights = by_key(out["estimated_fetal_weight"])
    assert weights["efw.intergrowth21.hc_ac"]["efw_g"] == pytest.approx(1499, abs=1)
    # Without a GA, no centile; and the output says why.
    assert out["centiles"] == []
    reasons = {row["key"]: row["reason"] for row in out["not_computed"]}
    assert "circular" in reasons["centile.intergrowth21.hc"]
    assert reasons["centile.intergrowth21.fl"] == "missing measurement: fl_mm"
    assert reasons["ga.hadlock1984.bpd"] == "missing measurement: bpd_mm"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--hc", "-5"], "--hc: -5 mm"),
        (["--hc", "0"], "must be positive"),
        (["--hc", "nan"], "--hc: NaN"),
        (["--hc", "inf"], "--hc: inf is not a finite"),
        (["--hc", "5000"], "--hc: 5000 mm is not a plausible"),
        (["--ac", "abc"], "argument --ac: invalid float value"),
        ([], "no measurement given"),
        (["--hc", "175", "--ga-weeks", "twenty"], "--ga-weeks: 'twenty' is not a gestational age"),
        (["--hc", "175", "--ga-weeks", "20+9"], "days after '+' must be 0-6"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(args, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out = capsys.readouterr()
    assert exit_info.value.code == 2
    assert out.out == ""
    assert out.err.count("\n") == 1, out.err
    assert fragment in out.err


def test_cli_bad_argument_as_a_subprocess():
    proc = run_cli("--hc", "5000", "--ac", "260")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (
        "python -m inference.biometry: error: --hc: 5000 mm is not a plausible head circumference "
        "(HC) (above 500 mm); check the unit — inputs are in mm\n"
    )


def test_compute_all_flags_out_of_range_and_lists_missing():
    report = compute_all({"hc_mm": 380.0, "fl_mm": None}, ga_days=41 * 7)
    data = report.to_dict()
    ig_hc = by_key(data["gestational_age"])["ga.intergrowth21.hc"]
    assert ig_hc["flags"][0]["parameter"] == "hc_mm"  # beyond the 14-26 week dating window
    assert data["flagged_results"] >= 2
    assert {row["key"] for row in data["not_computed"]} >= {
        "ga.hadlock1984.fl",
        "efw.intergrowth21.hc_ac",
    }


def test_compute_all_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"^crl_mm: unknown measurement"):
        compute_all({"crl_mm": 40})


@pytest.mark.parametrize(
    ("text", "days"), [("20", 140.0), ("20.5", 143.5), ("20+3", 143.0), ("20w3d", 143.0)]
)
def test_parse_ga_weeks(text, days):
    assert parse_ga_weeks(text) == days
