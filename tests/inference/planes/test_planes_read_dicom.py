"""Reading real ultrasound DICOM files (palette, YBR, RGB, multi-frame) into grey frames."""

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from inference.planes.preprocess import ImageReadError, prepare, read_dicom_frames, read_image


def _file(name):
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} not available offline (pydicom-data not installed)")
    return path


@pytest.mark.parametrize(
    ("name", "frames"),
    [
        ("examples_palette.dcm", 1),  # PALETTE COLOR
        ("examples_ybr_color.dcm", 30),  # YBR_FULL_422, JPEG baseline, multi-frame
        ("US1_UNCR.dcm", 1),  # RGB
        ("OBXXXX1A.dcm", 1),  # obstetric preset, palette, RLE
    ],
)
def test_real_us_dicom_to_grey_frames(name, frames):
    path = _file(name)
    arr = read_dicom_frames(path)
    assert arr.ndim == 3 and arr.shape[0] == frames and arr.dtype == np.uint8
    assert arr.max() > 50  # real image content survived the colour conversion
    first = read_image(path)
    assert np.array_equal(first, arr[0])
    assert prepare(first).shape == (160, 160)


def test_not_dicom_is_named(tmp_path):
    bad = tmp_path / "x.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"garbage")
    with pytest.raises(ImageReadError, match=r"x\.dcm"):
        read_image(bad)
    empty = tmp_path / "e.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"e\.png: file is empty"):
        read_image(empty)
