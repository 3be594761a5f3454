"""Phantom DICOM: the demo command's files parse, carry calibration regions and pass dciodvfy."""

import json
import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from inference.phantom.__main__ import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["--out", str(out), "--seed", "0", "--cine-frames", "40"]) == 0
    return out


def test_demo_exams_parse_with_regions(demo):
    manifest = json.loads((demo / "manifest.json").read_text())
    files = sorted(demo.rglob("*.dcm"))
    assert len(files) == len(manifest) == 12
    studies = {}
    for path in files:
        ds = pydicom.dcmread(path)
        assert ds.Modality == "US" and ds.PhotometricInterpretation == "MONOCHROME2"
        (region,) = ds.SequenceOfUltrasoundRegions
        assert region.PhysicalUnitsXDirection == 3 and region.PhysicalUnitsYDirection == 3
        assert region.RegionSpatialFormat == 1 and region.RegionDataType == 1
        row = next(r for r in manifest if r["file"] == str(path.relative_to(demo)))
        assert region.PhysicalDeltaX == pytest.approx(row["pixel_mm"] / 10)
        studies.setdefault(ds.StudyInstanceUID, set()).add((ds.PatientID, ds.SeriesInstanceUID))
        assert ds.pixel_array.dtype == np.uint8
    assert len(studies) == 3
    assert all(len({p for p, _ in v}) == 1 for v in studies.values())  # one patient per exam


def test_cine_is_multiframe_with_frame_time(demo):
    ds = pydicom.dcmread(demo / "exam2_cine" / "CINE001.dcm")
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.3.1"
    assert ds.NumberOfFrames == 40 and ds.pixel_array.shape == (40, 256, 320)
    assert float(ds.FrameTime) == 40.0 and ds.CineRate == 25
    assert ds.FrameIncrementPointer == 0x00181063


def test_single_frame_values_match_generator(demo):
    from inference.phantom import make_frame

    ds = pydicom.dcmread(demo / "exam1_biometry" / "IMG001.dcm")
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.6.1"
    from inference.phantom.demo import EXAM_GA_DAYS, exam_sizes

    f = make_frame(
        "fetal_brain",
        brain_plane="trans_thalamic",
        seed=101,
        shape=(360, 480),
        **exam_sizes("fetal_brain", EXAM_GA_DAYS[1]),
    )
    assert np.array_equal(ds.pixel_array, f.image)


def test_a_demo_exam_is_one_fetus_of_one_gestational_age(demo):
    """Head, abdomen and femur of the biometry demo exam, and of the cine sweep, date each to
    the same week."""
    import json

    from inference.biometry import compute_all

    manifest = json.loads((demo / "manifest.json").read_text())
    truth = {}
    for row in manifest:
        if row["exam"] == "exam1_biometry":
            truth.update(row["measurements_mm"])
    ages = compute_all({"hc_mm": truth["HC"], "ac_mm": truth["AC"], "fl_mm": truth["FL"]})
    weeks = [g["ga_days"] / 7 for g in ages.to_dict()["gestational_age"]]
    assert len(weeks) >= 3 and max(weeks) - min(weeks) < 1.5, weeks
    # the cine sweep too: its head, trunk and femur are one fetus
    (cine,) = [r for r in manifest if r["exam"] == "exam2_cine"]
    m = cine["measurements_mm"]
    ages = compute_all({"hc_mm": m["HC"], "ac_mm": m["AC"], "fl_mm": m["FL"]})
    weeks = [g["ga_days"] / 7 for g in ages.to_dict()["gestational_age"]]
    assert len(weeks) >= 3 and max(weeks) - min(weeks) < 1.5, weeks
    # and its femur is a standard plane, so FL is measurable
    (femur,) = [
        r for r in manifest if r["exam"] == "exam1_biometry" and r["plane"] == "fetal_femur"
    ]
    assert all(femur["criteria"].values()), femur["criteria"]


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
def test_dciodvfy_finds_no_errors(demo):
    for path in (demo / "exam1_biometry" / "IMG001.dcm", demo / "exam2_cine" / "CINE001.dcm"):
        out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        text = out.stdout + out.stderr
        assert "Error" not in text, text


def test_same_seed_writes_the_same_uids(demo, tmp_path_factory):
    again = tmp_path_factory.mktemp("demo-again")
    assert main(["--out", str(again), "--seed", "0", "--cine-frames", "40"]) == 0

    def uids(root):
        return sorted(
            (p.relative_to(root).as_posix(), ds.StudyInstanceUID, ds.SOPInstanceUID)
            for p in root.rglob("*.dcm")
            for ds in [pydicom.dcmread(p, stop_before_pixels=True)]
        )

    first = uids(demo)
    assert first and first == uids(again)
