"""Evaluation command: bad input named with exit 2; a small run prints one JSON object."""

import json

import numpy as np
import pytest
from PIL import Image

from inference.phantom import make_frame
from inference.phantom.dicom import ExamIds, phantom_uid, write_us_image
from inference.planes.evaluate import main
from inference.planes.model import DEFAULT_WEIGHTS


def _png(path, plane="fetal_abdomen", seed=0):
    Image.fromarray(make_frame(plane, seed=seed).image).save(path)


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "img").mkdir()
    (tmp_path / "l.csv").write_text("filename,plane,brain_plane\n")
    assert main(["--images", str(tmp_path / "img"), "--labels", str(tmp_path / "l.csv")]) == 2
    assert "img: images folder is empty" in capsys.readouterr().err


def test_csv_naming_missing_files(tmp_path, capsys):
    _png(tmp_path / "a.png")
    (tmp_path / "l.csv").write_text(
        "filename,plane,brain_plane\na.png,Fetal abdomen,\nb.png,Other,\n"
    )
    assert main(["--images", str(tmp_path), "--labels", str(tmp_path / "l.csv")]) == 2
    err = capsys.readouterr().err
    assert "b.png" in err and "not in" in err


def test_unknown_class_names_line_and_value(tmp_path, capsys):
    _png(tmp_path / "a.png")
    (tmp_path / "l.csv").write_text("filename,plane,brain_plane\na.png,Fetal heart,\n")
    assert main(["--images", str(tmp_path), "--labels", str(tmp_path / "l.csv")]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "'Fetal heart'" in err


def test_unknown_brain_plane(tmp_path, capsys):
    _png(tmp_path / "a.png")
    (tmp_path / "l.csv").write_text("filename,plane,brain_plane\na.png,Fetal brain,Trans-orbital\n")
    assert main(["--images", str(tmp_path), "--labels", str(tmp_path / "l.csv")]) == 2
    assert "'Trans-orbital'" in capsys.readouterr().err


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="shipped plane weights not present")
def test_unreadable_image_is_named(tmp_path, capsys):
    _png(tmp_path / "a.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "l.csv").write_text(
        "filename,plane,brain_plane\na.png,Fetal abdomen,\nbroken.png,Other,\n"
    )
    assert main(["--images", str(tmp_path), "--labels", str(tmp_path / "l.csv")]) == 2
    assert "broken.png" in capsys.readouterr().err


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="shipped plane weights not present")
def test_report_on_png_jpeg_colour_and_dicom(tmp_path, capsys):
    f = make_frame("fetal_brain", brain_plane="trans_thalamic", seed=1)
    Image.fromarray(f.image).save(tmp_path / "head.png")
    rgb = np.stack([f.image] * 3, -1)
    canvas = np.zeros((420, 520, 3), np.uint8)  # a screen capture with a text strip
    canvas[40:296, 100:420] = rgb
    canvas[5:15, 10:200] = 255
    Image.fromarray(canvas).save(tmp_path / "capture.jpg", quality=92)
    g = make_frame("fetal_femur", seed=2)
    ids = ExamIds.for_exam(0, 9, "eval test")
    write_us_image(
        tmp_path / "femur.dcm",
        g.image,
        fov=g.fov,
        pixel_mm=g.pixel_mm,
        ids=ids,
        series_uid=phantom_uid(9, "s"),
        sop_uid=phantom_uid(9, "i"),
    )
    _png(tmp_path / "abd.tif", seed=3)
    (tmp_path / "l.csv").write_text(
        "filename,plane,brain_plane\n"
        "head.png,Fetal brain,Trans-thalamic\n"
        "capture.jpg,Fetal brain,Trans-thalamic\n"
        "femur.dcm,Fetal femur,Not A Brain\n"
        "abd.tif,Fetal abdomen,\n"
    )
    out = tmp_path / "r.json"
    assert (
        main(["--images", str(tmp_path), "--labels", str(tmp_path / "l.csv"), "--out", str(out)])
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["n"] == 4
    assert printed["per_class"]["Fetal brain"]["support"] == 2
    assert printed["per_class"]["Fetal femur"]["support"] == 1
    assert sum(map(sum, printed["confusion_matrix"])) == 4
    assert printed["brain_plane"]["n"] == 2
    assert 0 <= printed["accuracy"] <= 1 and printed["ms_per_image"] > 0
