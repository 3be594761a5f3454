"""Report builders on a phantom exam: every object passes dciodvfy / dsrdump / dcmdump with no
error, the TID 5000 tree has the template's structure (which the validators do not check), and
every measurement reads back with its LOINC code, unit and coordinates on its source frame."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest

from inference.reporting import readback, validate
from inference.reporting.content import KINDS
from inference.reporting.images import derived_us_image, key_image_sc
from inference.reporting.overlay import burn_in
from inference.reporting.scoord import ellipse_from_points
from inference.reporting.seg import build_seg
from inference.reporting.tid1500 import build_tid1500
from inference.reporting.tid5000 import build_tid5000

pytestmark = pytest.mark.skipif(
    shutil.which("dciodvfy") is None or shutil.which("dsrdump") is None,
    reason="dcmtk and dicom3tools are not installed (apt install dcmtk dicom3tools)",
)

LOINC = {"BPD": "11820-8", "HC": "11984-2", "AC": "11979-2", "FL": "11963-6", "OFD": "11851-3"}


def _save(ds, tmp_path, name):
    path = tmp_path / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _assert_valid(path, *, sr: bool) -> None:
    v = validate.dciodvfy(path)
    assert v.errors == [], v.output
    d = validate.dcmdump(path)
    assert d.ok, d.output
    if sr:
        s = validate.dsrdump(path)
        assert s.ok, s.output


@pytest.fixture(scope="module")
def tid5000(phantom_exam):
    return build_tid5000(
        phantom_exam.content, series_instance_uid="2.25.9001", sop_instance_uid="2.25.9002"
    )


def test_tid5000_passes_dciodvfy_dsrdump_dcmdump(tid5000, tmp_path) -> None:
    path = _save(tid5000, tmp_path, "tid5000")
    _assert_valid(path, sr=True)
    dump = validate.dsrdump(path).output
    assert "OB-GYN Ultrasound Procedure Report" in dump
    assert "TID 5000" in dump or "5000" in dump


def _children(item):
    return list(item.get("ContentSequence", []))


def _name(item):
    c = item.ConceptNameCodeSequence[0]
    return (c.CodingSchemeDesignator, c.CodeValue)


def _template(item):
    return (
        item.ContentTemplateSequence[0].TemplateIdentifier
        if "ContentTemplateSequence" in item
        else None
    )


def test_tid5000_tree_follows_the_template(tid5000, phantom_exam) -> None:
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(_bytes(tid5000)))
    assert _name(ds) == ("DCM", "125000") and _template(ds) == "5000"
    assert ds.ValueType == "CONTAINER" and ds.CompletionFlag == "COMPLETE"
    assert ds.VerificationFlag == "VERIFIED"
    top = _children(ds)
    context = [i for i in top if i.RelationshipType == "HAS OBS CONTEXT"]
    observer_types = [
        i.ConceptCodeSequence[0].CodeValue for i in context if _name(i)[1] == "121005"
    ]
    assert observer_types == ["121006", "121007"]  # person (signer), then device
    assert any(i.ValueType == "PNAME" and i.PersonName == "Obstetrician^Olivia" for i in context)
    sections = {_name(i)[1]: i for i in top if i.ValueType == "CONTAINER"}
    assert set(sections) == {"121111", "125002"}
    assert _template(sections["121111"]) == "5002" and _template(sections["125002"]) == "5005"
    (fetus,) = _children(sections["121111"])
    assert _name(fetus) == ("DCM", "125008") and _template(fetus) == "5003"
    summary = {_name(i)[1]: i for i in _children(fetus)}
    # GA used and the Hadlock EFW; no EFW percentile: the INTERGROWTH-21st chart's centile is of
    # the INTERGROWTH-21st EFW, a different number.
    assert set(summary) == {"18185-9", "11727-5"}
    ga_used = phantom_exam.content.ga_used
    assert float(summary["18185-9"].MeasuredValueSequence[0].NumericValue) == pytest.approx(
        ga_used.value, abs=1e-3
    )
    (eq,) = _children(summary["11727-5"])
    assert eq.RelationshipType == "INFERRED FROM" and _name(eq) == ("DCM", "121420")
    assert eq.ConceptCodeSequence[0].CodeValue == "11732-5"  # EFW by AC, BPD, FL, HC, Hadlock 1985

    groups = _children(sections["125002"])
    assert len(groups) == len(KINDS)
    kinds_seen = []
    for group in groups:
        assert _name(group) == ("DCM", "125005") and _template(group) == "5008"
        items = _children(group)
        measurement_codes = {_name(i)[1] for i in items} & set(LOINC.values())
        assert len(measurement_codes) == 1, "one biometric type per group (PS3.17 I.6)"
        code = measurement_codes.pop()
        kind = next(k for k, v in LOINC.items() if v == code)
        kinds_seen.append(kind)
        (num,) = [i for i in items if _name(i)[1] == code]
        assert num.RelationshipType == "CONTAINS"
        (sc,) = [c for c in _children(num) if c.ValueType == "SCOORD"]
        assert sc.RelationshipType == "INFERRED FROM"
        (img,) = _children(sc)
        assert img.RelationshipType == "SELECTED FROM" and img.ValueType == "IMAGE"
        if kind in LOINC and kind != "OFD":
            (ga,) = [i for i in items if _name(i)[1] == "18185-9"]
            (eq,) = _children(ga)
            assert (
                _name(eq) == ("DCM", "121420")
                and eq.ConceptCodeSequence[0].CodingSchemeDesignator == "LN"
            )
        (rank,) = [i for i in items if _name(i)[1] == "125012"]
        (table,) = _children(rank)
        assert _name(table) == ("DCM", "121424")
        assert table.ConceptCodeSequence[0].CodingSchemeDesignator == "99SNRVW"
    assert kinds_seen == list(KINDS)
    (scheme,) = ds.CodingSchemeIdentificationSequence
    assert scheme.CodingSchemeDesignator == "99SNRVW"


def _bytes(ds) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_every_measurement_reads_back_with_code_unit_and_coordinates(tid5000, phantom_exam) -> None:
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(_bytes(tid5000)))
    nums = readback.numeric_items(ds)
    for m in phantom_exam.content.measurements:
        (found,) = [n for n in nums if n.code[:2] == ("LN", LOINC[m.kind])]
        assert found.value == pytest.approx(m.value_mm, abs=1e-3)
        assert found.unit == ("UCUM", "mm")
        (coords,) = [c for c in found.children if c["type"] == "SCOORD"]
        (image,) = coords["images"]
        assert image["sop_instance_uid"] == m.source.sop_instance_uid
        if m.kind == "FL":  # frame 2 of the 3-frame cine
            assert image["frames"] == [2]
        else:
            assert image["frames"] == []
        points = np.asarray(coords["graphic_data"]).reshape(-1, 2)
        if m.shape == "ellipse":
            assert coords["graphic_type"] == "ELLIPSE" and points.shape == (4, 2)
            e = ellipse_from_points(points)
            g = m.geometry_px
            assert e["cx"] == pytest.approx(g["cx"], abs=1e-3)
            assert e["cy"] == pytest.approx(g["cy"], abs=1e-3)
            assert e["major"] == pytest.approx(max(g["a"], g["b"]), abs=1e-3)
            assert e["minor"] == pytest.approx(min(g["a"], g["b"]), abs=1e-3)
        else:
            assert coords["graphic_type"] == "POLYLINE" and points.shape == (2, 2)
            # DICOM puts pixel centres at +0.5 of the project's integer-centred coordinates.
            assert points - 0.5 == pytest.approx(np.asarray(m.geometry_px["points"]), abs=1e-3)
    efw = phantom_exam.content.efw_used
    (weight,) = [n for n in nums if n.code[1] == "11727-5"]
    assert weight.unit == ("UCUM", "g") and weight.value == pytest.approx(efw.value, abs=1e-3)
    days = [n for n in nums if n.code[1] == "18185-9"]
    assert all(n.unit == ("UCUM", "d") for n in days) and len(days) == 5  # 4 groups + summary


def test_tid1500_is_valid_and_holds_the_same_measurements(phantom_exam, tmp_path) -> None:
    ds = build_tid1500(
        phantom_exam.content, series_instance_uid="2.25.9011", sop_instance_uid="2.25.9012"
    )
    path = _save(ds, tmp_path, "tid1500")
    _assert_valid(path, sr=True)
    back = pydicom.dcmread(path)
    assert _name(back) == ("DCM", "126000") and _template(back) == "1500"
    nums = readback.numeric_items(back)
    got = sorted((n.code[1], round(n.value, 3), n.unit) for n in nums)
    want = sorted(
        (LOINC[m.kind], round(m.value_mm, 3), ("UCUM", "mm"))
        for m in phantom_exam.content.measurements
    )
    assert got == want
    regions = [s for s in readback.region_scoords(back) if s["graphic_type"] == "ELLIPSE"]
    assert len(regions) == 2  # HC and AC as planar ROIs
    dump = validate.dsrdump(path).output
    assert "Algorithm Name" in dump and "head-unet" in dump  # AI provenance kept


def test_derived_image_key_image_and_seg_are_valid(phantom_exam, tmp_path) -> None:
    head = pydicom.dcmread(phantom_exam.files["head"])
    femur = pydicom.dcmread(phantom_exam.files["femur"])
    derived = derived_us_image(
        femur,
        2,
        phantom_exam.pixels["femur"],
        sop_instance_uid="2.25.9021",
        series_instance_uid="2.25.9020",
    )
    path = _save(derived, tmp_path, "derived")
    _assert_valid(path, sr=False)
    back = pydicom.dcmread(path)
    assert "NumberOfFrames" not in back and back.ImageType[:2] == ["DERIVED", "SECONDARY"]
    (ref,) = back.SourceImageSequence
    assert ref.ReferencedSOPInstanceUID == femur.SOPInstanceUID and ref.ReferencedFrameNumber == 2
    assert (
        back.SequenceOfUltrasoundRegions[0].PhysicalDeltaX
        == femur.SequenceOfUltrasoundRegions[0].PhysicalDeltaX
    )
    assert np.array_equal(back.pixel_array, phantom_exam.pixels["femur"])

    head_rows = [
        m
        for m in phantom_exam.content.measurements
        if m.source.header.SOPInstanceUID == head.SOPInstanceUID
    ]
    rgb = burn_in(
        phantom_exam.pixels["head"],
        [(m.kind, m.geometry_px, f"{m.kind} {m.value_mm:.1f} mm") for m in head_rows],
    )
    assert rgb.shape == (*phantom_exam.pixels["head"].shape, 3)
    # The HC outline is drawn in its colour on the ellipse's rightmost point.
    g = head_rows[0].geometry_px
    assert (rgb != np.repeat(phantom_exam.pixels["head"][:, :, None], 3, axis=2)).any(
        axis=2
    ).sum() > 500
    sc = key_image_sc(
        head, 1, rgb, sop_instance_uid="2.25.9031", series_instance_uid="2.25.9030", title="Head"
    )
    path = _save(sc, tmp_path, "key")
    _assert_valid(path, sr=False)
    back = pydicom.dcmread(path)
    assert back.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and back.BurnedInAnnotation == "YES"
    assert np.array_equal(back.pixel_array, rgb)
    del g

    clean = derived_us_image(
        head,
        1,
        phantom_exam.pixels["head"],
        sop_instance_uid="2.25.9041",
        series_instance_uid="2.25.9040",
    )
    seg = build_seg(
        clean,
        phantom_exam.content.segments,
        series_instance_uid="2.25.9050",
        sop_instance_uid="2.25.9051",
    )
    path = _save(seg, tmp_path, "seg")
    _assert_valid(path, sr=False)
    back = pydicom.dcmread(path)
    assert back.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert [s.SegmentLabel for s in back.SegmentSequence] == ["Fetal skull", "Fetal head"]
    assert (
        back.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
        == "2.25.9041"
    )
    import highdicom as hd

    decoded = hd.seg.Segmentation.from_dataset(back)
    skull = decoded.get_pixels_by_source_instance(
        source_sop_instance_uids=["2.25.9041"], segment_numbers=[1]
    )[0, :, :, 0]
    assert np.array_equal(skull.astype(bool), phantom_exam.content.segments[0].mask)


def test_a_report_without_measurements_is_refused(phantom_exam) -> None:
    from dataclasses import replace

    empty = replace(phantom_exam.content, measurements=())
    with pytest.raises(ValueError, match="at least one measurement"):
        build_tid5000(empty, series_instance_uid="2.25.1", sop_instance_uid="2.25.2")
