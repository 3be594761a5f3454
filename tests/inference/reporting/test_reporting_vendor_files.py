"""The builders on real vendor US headers (pydicom's and pydicom-data's files): a 30-frame YBR
JPEG cine (retired US Multi-frame class) and a palette-colour obstetric image with two regions.
Every object passes dciodvfy and dcmdump; the derived frame and key image carry the pixels given."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from inference.reporting import readback, validate
from inference.reporting.biometry import derive
from inference.reporting.content import Measurement, ReportContent, Segment, SourceFrame
from inference.reporting.images import derived_us_image, key_image_sc
from inference.reporting.overlay import burn_in
from inference.reporting.seg import build_seg
from inference.reporting.tid1500 import build_tid1500
from inference.reporting.tid5000 import build_tid5000

pytestmark = pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dicom3tools is not installed"
)


def _file(name: str) -> str:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not installed (pydicom-data missing?)")
    return path


def _display(ds: pydicom.Dataset, frame: int) -> np.ndarray:
    from pydicom.pixels import apply_color_lut, convert_color_space

    arr = ds.pixel_array
    arr = arr[frame - 1] if int(ds.get("NumberOfFrames", 1) or 1) > 1 else arr
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        return (rgb >> 8).astype(np.uint8) if rgb.dtype != np.uint8 else rgb
    if ds.PhotometricInterpretation.startswith("YBR"):
        return convert_color_space(arr, "YBR_FULL", "RGB")
    return arr.astype(np.uint8)


@pytest.mark.parametrize(("name", "frame"), [("examples_ybr_color.dcm", 7), ("OBXXXX1A.dcm", 1)])
def test_every_object_from_a_vendor_header_is_valid(name: str, frame: int, tmp_path) -> None:
    full = pydicom.dcmread(_file(name))
    header = pydicom.dcmread(_file(name), stop_before_pixels=True)
    rows, cols = int(full.Rows), int(full.Columns)
    source = SourceFrame(header, frame)
    cx, cy = cols / 2, rows / 2
    ellipse = {"type": "ellipse", "cx": cx, "cy": cy, "a": cols / 5, "b": rows / 6, "angle": 0.3}
    line = {"type": "line", "points": [[cx - 40, cy], [cx + 40, cy + 10]]}
    measurements = (
        Measurement("HC", 180.0, ellipse, source, "ai", "2.25.71", "", ("head-unet", "v1")),
        Measurement("BPD", 45.0, line, source, "physician", "2.25.72", "outer-to-inner"),
    )
    derived, notes = derive({"HC": 180.0, "BPD": 45.0})
    yy, xx = np.mgrid[:rows, :cols]
    mask = ((xx - cx) / (cols / 5)) ** 2 + ((yy - cy) / (rows / 6)) ** 2 <= 1
    content = ReportContent(
        header=header,
        measurements=measurements,
        derived=derived,
        signer_name="Vendor^Vera",
        signer_login="vera",
        signed_at=dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC),
        segments=(Segment("skull", mask, source),),
        notes=notes,
    )
    pixels = _display(full, frame)
    objects = {
        "sr5000": build_tid5000(content, series_instance_uid="2.25.81", sop_instance_uid="2.25.82"),
        "sr1500": build_tid1500(content, series_instance_uid="2.25.83", sop_instance_uid="2.25.84"),
    }
    derived_image = derived_us_image(
        header, frame, pixels, sop_instance_uid="2.25.85", series_instance_uid="2.25.86"
    )
    objects["derived"] = derived_image
    objects["seg"] = build_seg(
        derived_image, content.segments, series_instance_uid="2.25.87", sop_instance_uid="2.25.88"
    )
    rgb = burn_in(pixels, [(m.kind, m.geometry_px, m.kind) for m in measurements], masks=[mask])
    objects["key"] = key_image_sc(
        header, frame, rgb, sop_instance_uid="2.25.89", series_instance_uid="2.25.90", title="t"
    )
    for kind, ds in objects.items():
        path = tmp_path / f"{kind}.dcm"
        ds.save_as(path, enforce_file_format=True)
        v = validate.dciodvfy(path)
        assert v.errors == [], f"{name} {kind}: {v.output}"
        assert validate.dcmdump(path).ok
        back = pydicom.dcmread(path)
        assert (
            back.PatientID == header.PatientID and back.StudyInstanceUID == header.StudyInstanceUID
        )
    assert np.array_equal(pydicom.dcmread(tmp_path / "derived.dcm").pixel_array, pixels)
    sr = pydicom.dcmread(tmp_path / "sr5000.dcm")
    (hc,) = [n for n in readback.numeric_items(sr) if n.code[1] == "11984-2"]
    (coords,) = [c for c in hc.children if c["type"] == "SCOORD"]
    multiframe = int(header.get("NumberOfFrames", 1) or 1) > 1
    assert coords["images"][0]["frames"] == ([frame] if multiframe else [])
