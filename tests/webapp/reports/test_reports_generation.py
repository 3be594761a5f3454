"""Reports of a signed exam: every object built for a real (phantom) exam, validated with dcmtk and
dicom3tools, the SR read back value by value, the PDF rendered and turned into PNG pages."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

from inference.reporting import readback, validate
from tests.webapp.reports.conftest import decide_all, sign
from webapp.reports import services
from webapp.reports.models import ReportDocument, ReportGeneration, ReportKind, WritebackStatus

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("dciodvfy", "dsrdump", "dcmdump", "pdftoppm")),
        reason="needs dcmtk, dicom3tools and poppler-utils (scripts/ensure-services.sh installs them)",
    ),
]

REPO_ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO_ROOT / "artifacts" / "reports"
LOINC = {"BPD": "11820-8", "HC": "11984-2", "AC": "11979-2", "FL": "11963-6", "OFD": "11851-3"}


def _signed(analysed_exam, make_user, django_capture_on_commit_callbacks, **kwargs):
    study = analysed_exam(**kwargs)
    doctor = make_user("obstetrician", first_name="Olivia", last_name="Obstetrician")
    decide_all(study, doctor, edit_bpd_by_px=4.0)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        signoff = sign(study, doctor)
    assert callbacks, "signing queues the report generation after commit"
    generation = ReportGeneration.objects.get(signoff=signoff)
    assert generation.status == ReportGeneration.Status.PENDING
    return study, doctor, signoff, generation


def test_signing_builds_every_report_object_and_each_passes_the_validators(
    analysed_exam, make_user, django_capture_on_commit_callbacks
) -> None:
    study, _, signoff, generation = _signed(
        analysed_exam, make_user, django_capture_on_commit_callbacks
    )

    docs = services.generate_reports(generation_id=generation.pk)

    generation.refresh_from_db()
    assert generation.status == ReportGeneration.Status.DONE
    kinds = sorted((d.kind, d.label) for d in docs)
    assert kinds == sorted(
        [
            ("pdf", ""),
            ("sr5000", ""),
            ("sr1500", ""),
            ("key-image", "head"),
            ("key-image", "abdomen"),
            ("key-image", "femur"),
            ("derived-image", "skull"),
            ("derived-image", "abdomen"),
            ("derived-image", "femur"),
            ("seg", "skull"),
            ("seg", "abdomen"),
            ("seg", "femur"),
        ]
    )
    verdicts = {}
    for doc in docs:
        if not doc.is_dicom:
            continue
        path = Path(doc.file.path)
        v = validate.dciodvfy(path)
        assert v.errors == [], f"{doc}: {v.output}"
        d = validate.dcmdump(path)
        assert d.ok, f"{doc}: {d.output}"
        if doc.kind in (ReportKind.SR5000, ReportKind.SR1500):
            s = validate.dsrdump(path)
            assert s.ok, f"{doc}: {s.output}"
        verdicts[f"{doc.kind} {doc.label}".strip()] = (len(v.errors), len(v.warnings))
        assert doc.writeback.status == WritebackStatus.NO_PACS  # none configured in tests
        ds = pydicom.dcmread(path)
        assert ds.StudyInstanceUID == study.study_instance_uid
        assert ds.SOPInstanceUID == doc.sop_instance_uid
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "validators.txt").write_text(
        "\n".join(
            f"{k}: dciodvfy {e} errors, {w} warnings" for k, (e, w) in sorted(verdicts.items())
        )
        + "\n"
    )

    # The SR, parsed back, holds every signed value with its LOINC code and unit (mm).
    sr = ReportDocument.objects.get(study=study, kind=ReportKind.SR5000, version=1)
    nums = readback.numeric_items(pydicom.dcmread(sr.file.path))
    final = signoff.summary["final_values_mm"]
    assert set(final) == set(LOINC)
    cine = study.series.get().instances.get(instance_number=3)
    for kind, value in final.items():
        (item,) = [n for n in nums if n.code[:2] == ("LN", LOINC[kind])]
        assert item.value == pytest.approx(value, abs=0.05)  # signed at 0.1 mm, measured finer
        assert item.unit == ("UCUM", "mm")
        (coords,) = [c for c in item.children if c["type"] == "SCOORD"]
        if kind == "FL":
            assert coords["images"] == [{"sop_instance_uid": cine.sop_instance_uid, "frames": [2]}]
    # The edited BPD is the physician's value, not the AI's.
    bpd_ai = signoff.summary["measurements"]
    (bpd_row,) = [m for m in bpd_ai if m["kind"] == "BPD"]
    assert bpd_row["state"] == "edited" and bpd_row["final_mm"] != bpd_row["ai_value_mm"]

    # SEG of the femur references the derived frame, which references frame 2 of the cine.
    seg = pydicom.dcmread(
        ReportDocument.objects.get(study=study, kind="seg", label="femur").file.path
    )
    frame_doc = ReportDocument.objects.get(study=study, kind="derived-image", label="femur")
    ref = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    assert ref.ReferencedSOPInstanceUID == frame_doc.sop_instance_uid
    derived = pydicom.dcmread(frame_doc.file.path)
    assert derived.SourceImageSequence[0].ReferencedSOPInstanceUID == cine.sop_instance_uid
    assert derived.SourceImageSequence[0].ReferencedFrameNumber == 2
    assert seg.SegmentSequence[0].SegmentLabel == "Fetal femur"


def test_the_pdf_renders_with_every_section_and_turns_into_png_pages(
    analysed_exam, make_user, django_capture_on_commit_callbacks, tmp_path
) -> None:
    study, _doctor, signoff, generation = _signed(
        analysed_exam, make_user, django_capture_on_commit_callbacks
    )
    services.generate_reports(generation_id=generation.pk)
    pdf = ReportDocument.objects.get(study=study, kind=ReportKind.PDF, version=1)
    data = Path(pdf.file.path).read_bytes()
    assert data.startswith(b"%PDF") and pdf.sha256 and pdf.size_bytes == len(data)

    text = subprocess.run(
        ["pdftotext", "-layout", pdf.file.path, "-"], capture_output=True, text=True, check=True
    ).stdout
    for needle in (
        study.patient.name,
        "Key images",
        "Gestational age by each method",
        "used",
        "Hadlock 1985",
        "INTERGROWTH-21st",
        "Growth charts",
        "Image quality",
        "Signed by",
        "AI, edited by physician",
        signoff.content_hash[:16],
    ):
        assert needle in text, needle
    final = signoff.summary["final_values_mm"]
    assert f"{final['HC']:.1f}" in text and f"{final['FL']:.1f}" in text

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("report-page-*.png"):
        old.unlink()
    subprocess.run(
        ["pdftoppm", "-r", "80", "-png", pdf.file.path, str(ARTIFACTS / "report-page")], check=True
    )
    pages = sorted(ARTIFACTS.glob("report-page-*.png"))
    assert len(pages) >= 2
    from PIL import Image

    with Image.open(pages[0]) as first:
        assert first.size[0] > 600 and first.size[1] > 800  # A4 at 80 dpi: 661 × 935
        # Not a blank page: the key images put dark ultrasound pixels on it.
        grey = first.convert("L")
        assert grey.getextrema()[0] < 30
