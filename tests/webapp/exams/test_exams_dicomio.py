"""Decoding every photometric interpretation and transfer syntax frame by frame, and calibration."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.webapp.exams.conftest import shared_data, us_file
from webapp.exams.dicomio import (
    DicomProblem,
    FrameReader,
    Region,
    calibration_for_points,
    display_frame,
    inspect_dicom_file,
    inspected_header,
    regions_from_dataset,
)

# (file, photometric interpretation, transfer syntax) — real US and SC files.
CASES = [
    ("US1_UNCR.dcm", "RGB", "1.2.840.10008.1.2.1"),
    ("US1_J2KR.dcm", "YBR_RCT", "1.2.840.10008.1.2.4.90"),
    ("US1_J2KI.dcm", "YBR_ICT", "1.2.840.10008.1.2.4.91"),
    ("examples_ybr_color.dcm", "YBR_FULL_422", "1.2.840.10008.1.2.4.50"),
    ("examples_palette.dcm", "PALETTE COLOR", "1.2.840.10008.1.2.1"),
    ("OBXXXX1A_rle_2frame.dcm", "PALETTE COLOR", "1.2.840.10008.1.2.5"),
    ("OBXXXX1A_expb_2frame.dcm", "PALETTE COLOR", "1.2.840.10008.1.2.2"),
    ("gdcm-US-ALOKA-16.dcm", "PALETTE COLOR", "1.2.840.10008.1.2"),
    ("SC_ybr_full_422_uncompressed.dcm", "YBR_FULL_422", "1.2.840.10008.1.2.1"),
    ("SC_rgb_rle_2frame.dcm", "RGB", "1.2.840.10008.1.2.5"),
    ("MR_small_RLE.dcm", "MONOCHROME2", "1.2.840.10008.1.2.5"),
]


def with_uids(path: Path, tmp_path: Path) -> Path:
    """Some SC test files lack study/series UIDs that any real exam has; add them."""
    ds = pydicom.dcmread(path)
    if "StudyInstanceUID" in ds and "SeriesInstanceUID" in ds:
        return path
    ds.StudyInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    out = tmp_path / path.name
    ds.save_as(out)
    return out


@pytest.mark.parametrize(("name", "photometric", "ts"), CASES)
def test_each_frame_decodes_alone_like_pydicom(
    name: str, photometric: str, ts: str, tmp_path: Path
) -> None:
    path = with_uids(us_file(name), tmp_path)
    inspected = inspect_dicom_file(path)
    assert (inspected.photometric_interpretation, inspected.transfer_syntax_uid) == (
        photometric,
        ts,
    )
    reader = FrameReader(path, inspected_header(inspected), inspected.frame_byte_ranges, ts)
    full = pydicom.dcmread(path).pixel_array
    if inspected.number_of_frames == 1:
        full = full[None]
    for index in range(inspected.number_of_frames):
        np.testing.assert_array_equal(reader.decode(index), full[index])
    shown = display_frame(reader, 0)
    assert shown.dtype == np.uint8
    assert shown.shape[:2] == (inspected.rows, inspected.columns)
    assert shown.ndim == (2 if photometric.startswith("MONOCHROME") else 3)


def test_jpeg_ls(tmp_path: Path) -> None:
    path = with_uids(us_file("SC_rgb_jls_lossy_line.dcm"), tmp_path)
    inspected = inspect_dicom_file(path)
    reader = FrameReader(
        path,
        inspected_header(inspected),
        inspected.frame_byte_ranges,
        inspected.transfer_syntax_uid,
    )
    np.testing.assert_array_equal(reader.decode(0), pydicom.dcmread(path).pixel_array)


def test_palette_display_uses_the_lut() -> None:
    path = us_file("OBXXXX1A.dcm")
    inspected = inspect_dicom_file(path)
    reader = FrameReader(
        path,
        inspected_header(inspected),
        inspected.frame_byte_ranges,
        inspected.transfer_syntax_uid,
    )
    ds = pydicom.dcmread(path)
    expected = pydicom.pixels.apply_color_lut(ds.pixel_array, ds) >> 8
    np.testing.assert_array_equal(display_frame(reader, 0), expected.astype(np.uint8))


def test_big_endian_equals_little_endian_display() -> None:
    def shown(name: str) -> np.ndarray:
        path = us_file(name)
        i = inspect_dicom_file(path)
        return display_frame(
            FrameReader(path, inspected_header(i), i.frame_byte_ranges, i.transfer_syntax_uid), 1
        )

    np.testing.assert_array_equal(shown("OBXXXX1A_expb_2frame.dcm"), shown("OBXXXX1A_2frame.dcm"))


def test_cine_frame_ranges_and_times() -> None:
    inspected = inspect_dicom_file(us_file("color3d_jpeg_baseline.dcm"))
    assert inspected.number_of_frames == 120
    assert len(inspected.frame_byte_ranges) == 120
    assert inspected.frame_time_ms == pytest.approx(33.333)
    offsets = inspected.frame_time_offsets_ms()
    assert offsets[0] == 0 and offsets[119] == pytest.approx(119 * 33.333)
    # Ranges are disjoint and increasing: each frame is one seek + one read.
    starts = [r[0][0] for r in inspected.frame_byte_ranges]
    assert starts == sorted(starts)


def test_frame_time_vector_is_kept(tmp_path: Path) -> None:
    ds = pydicom.dcmread(us_file("examples_ybr_color.dcm"))
    del ds.FrameTime
    ds.FrameTimeVector = [0] + [40.0] * 14 + [20.0] * 15
    ds.FrameIncrementPointer = 0x00181065
    path = tmp_path / "ftv.dcm"
    ds.save_as(path)
    inspected = inspect_dicom_file(path)
    assert inspected.frame_time_ms is None
    offsets = inspected.frame_time_offsets_ms()
    assert offsets[14] == pytest.approx(14 * 40.0) and offsets[29] == pytest.approx(
        14 * 40.0 + 15 * 20.0
    )


def test_shared_obstetric_samples_have_cm_regions() -> None:
    folder = shared_data() / "dicom_us_samples"
    if not folder.exists():
        pytest.skip(f"{folder} is absent (set SONOREVIEW_SHARED_DATA)")
    for path in sorted(folder.glob("*.dcm")):
        inspected = inspect_dicom_file(path)
        tissue = [r for r in inspected.regions if r.physical_units_x == 3]
        assert len(tissue) == 1, path.name
        assert tissue[0].physical_delta_x == pytest.approx(0.0262287877)


# --- Calibration --------------------------------------------------------------------------


def aloka_regions() -> list[Region]:
    return regions_from_dataset(pydicom.dcmread(us_file("gdcm-US-ALOKA-16.dcm")))


def test_calibration_inside_one_region() -> None:
    regions = regions_from_dataset(pydicom.dcmread(us_file("OBXXXX1A.dcm")))
    found = calibration_for_points(regions, [(200, 100), (700, 500)])
    assert found is not None
    mm_x, mm_y, region = found
    assert mm_x == pytest.approx(0.2622878766) and mm_y == pytest.approx(0.2622878766)
    assert region.index == 0


def test_calibration_refused_when_points_straddle_regions_of_a_dual_view() -> None:
    regions = aloka_regions()  # two side-by-side 2D images with identical spacing
    assert calibration_for_points(regions, [(100, 100), (300, 300)])[2].index == 0
    assert calibration_for_points(regions, [(400, 100), (600, 300)])[2].index == 1
    assert calibration_for_points(regions, [(300, 100), (400, 100)]) is None


def test_calibration_refused_outside_regions_and_for_non_cm_regions() -> None:
    regions = regions_from_dataset(pydicom.dcmread(us_file("OBXXXX1A.dcm")))
    assert calibration_for_points(regions, [(10, 10), (200, 100)]) is None  # one point outside
    assert (
        calibration_for_points(regions, [(200, 530), (300, 540)]) is None
    )  # spectral strip (s, —)
    assert calibration_for_points(regions, []) is None
    assert calibration_for_points([], [(1, 1)]) is None


def test_calibration_respects_frame_applicability_and_disagreeing_overlaps() -> None:
    a = Region(
        0,
        0,
        0,
        99,
        99,
        physical_units_x=3,
        physical_units_y=3,
        physical_delta_x=0.01,
        physical_delta_y=0.01,
        first_frame=1,
        last_frame=10,
    )
    b = Region(
        1,
        0,
        0,
        99,
        99,
        physical_units_x=3,
        physical_units_y=3,
        physical_delta_x=0.02,
        physical_delta_y=0.02,
        first_frame=11,
        last_frame=20,
    )
    assert calibration_for_points([a, b], [(5, 5)], frame=3)[0] == pytest.approx(0.1)
    assert calibration_for_points([a, b], [(5, 5)], frame=15)[0] == pytest.approx(0.2)
    assert calibration_for_points([a, b], [(5, 5)]) is None  # frame unknown: two answers
    zero = Region(
        2,
        0,
        0,
        99,
        99,
        physical_units_x=3,
        physical_units_y=3,
        physical_delta_x=0.0,
        physical_delta_y=0.0,
    )
    assert calibration_for_points([zero], [(5, 5)]) is None


@pytest.mark.django_db
def test_calibration_from_stored_region_rows() -> None:
    from webapp.exams import services
    from webapp.exams.models import UltrasoundRegion

    result = services.ingest_file(
        source=us_file("gdcm-US-ALOKA-16.dcm"), file_name="a.dcm", route="upload"
    )
    rows = list(UltrasoundRegion.objects.filter(instance_id=result.instance_id))
    assert len(rows) == 3
    mm_x, _, region = calibration_for_points(rows, [(100, 100), (300, 400)])
    assert mm_x == pytest.approx(0.3826530650) and region.index == 0


def test_inspect_rejects_garbage(tmp_path: Path) -> None:
    path = tmp_path / "x.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 300)
    with pytest.raises(DicomProblem):
        inspect_dicom_file(path)


def test_ybr_full_native(tmp_path: Path) -> None:
    """YBR_FULL (uncompressed): made from the real RGB US image, decoded back to RGB."""
    from pydicom.pixels import convert_color_space

    ds = pydicom.dcmread(us_file("US1_UNCR.dcm"))
    rgb = ds.pixel_array
    ds.PixelData = convert_color_space(rgb, "RGB", "YBR_FULL").tobytes()
    ds.PhotometricInterpretation = "YBR_FULL"
    path = tmp_path / "ybr_full.dcm"
    ds.save_as(path)
    inspected = inspect_dicom_file(path)
    reader = FrameReader(
        path,
        inspected_header(inspected),
        inspected.frame_byte_ranges,
        inspected.transfer_syntax_uid,
    )
    decoded = display_frame(reader, 0).astype(int)
    assert inspected.photometric_interpretation == "YBR_FULL"
    assert np.abs(decoded - rgb.astype(int)).max() <= 2  # two 8-bit colour conversions


@pytest.mark.django_db
def test_per_frame_regions_give_per_frame_calibration(tmp_path: Path) -> None:
    """A cine whose spacing changes mid-loop (zoom): each frame is measured with its own region."""
    from pydicom.dataset import Dataset

    from webapp.exams import services
    from webapp.exams.models import UltrasoundRegion

    ds = pydicom.dcmread(us_file("examples_ybr_color.dcm"))
    template = ds.SequenceOfUltrasoundRegions[0]
    del ds.SequenceOfUltrasoundRegions
    groups = []
    for frame in range(1, 31):
        region = copy.deepcopy(template)
        region.PhysicalDeltaX = region.PhysicalDeltaY = 0.05 if frame <= 15 else 0.04
        group = Dataset()
        group.SequenceOfUltrasoundRegions = [region]
        groups.append(group)
    ds.PerFrameFunctionalGroupsSequence = groups
    path = tmp_path / "zoomed.dcm"
    ds.save_as(path)
    result = services.ingest_file(source=path, file_name="zoomed.dcm", route="upload")
    assert result.outcome == "stored", result.reason
    rows = list(UltrasoundRegion.objects.filter(instance_id=result.instance_id))
    assert len(rows) == 30 and (rows[20].first_frame, rows[20].last_frame) == (21, 21)
    points = [(100, 100), (300, 300)]
    assert calibration_for_points(rows, points, frame=3)[0] == pytest.approx(0.5)
    assert calibration_for_points(rows, points, frame=20)[0] == pytest.approx(0.4)
    assert calibration_for_points(rows, points) is None  # frame unknown: spacing is ambiguous
