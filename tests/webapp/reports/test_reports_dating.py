"""The report's GA and centiles follow the GA from dates the physician signed: the PDF and the
TID 5000 SR use it as the GA ("ga.dates"), centiles are placed at it, and the circular-centile
note only appears when no GA from dates was signed."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

from inference.biometry import compute_all
from inference.reporting import readback, validate
from inference.reporting.biometry import CIRCULAR_NOTE
from tests.webapp.reports.conftest import decide_all, sign
from webapp.reports import services
from webapp.reports.collect import collect
from webapp.reports.models import ReportDocument, ReportGeneration, ReportKind
from webapp.review import services as review

pytestmark = pytest.mark.django_db

GA_LOINC = ("LN", "18185-9")
FETUS_SUMMARY = "125008"


def _signed(analysed_exam, make_user, django_capture_on_commit_callbacks, *, lmp=None):
    study = analysed_exam()
    doctor = make_user("obstetrician", username="dr_dates")
    decide_all(study, doctor)
    if lmp is not None:
        review.set_gestational_dating(study=study, basis="lmp", lmp=lmp, version=0, user=doctor)
    with django_capture_on_commit_callbacks(execute=False):
        signoff = sign(study, doctor)
    return study, signoff


def test_the_report_derives_ga_and_centiles_from_the_signed_dating(
    analysed_exam, make_user, django_capture_on_commit_callbacks
) -> None:
    # The report exams are dated 2026-03-15; an LMP of 2025-09-28 is 168 days (24w0d) before.
    study, signoff = _signed(
        analysed_exam, make_user, django_capture_on_commit_callbacks, lmp="2025-09-28"
    )
    assert study.study_date == dt.date(2026, 3, 15)
    assert signoff.summary["gestational_dating"]["ga_days"] == 168

    content = collect(signoff).content
    assert (content.ga_used.key, content.ga_used.value) == ("ga.dates", 168.0)
    assert [d.key for d in content.derived if d.kind == "GA" and d.used] == ["ga.dates"]
    hc = signoff.summary["final_values_mm"]["HC"]
    expected = compute_all({"hc_mm": hc}, ga_days=168).centiles[0].centile
    assert content.centile("HC").value == pytest.approx(expected, abs=0.005)  # to_dict: 0.01
    assert CIRCULAR_NOTE not in content.notes
    assert content.notes[0] == (
        "Gestational age from dates: 24w0d on the exam date (Last menstrual period, "
        "LMP 2025-09-28; entered by dr_dates); centiles are placed at it."
    )


@pytest.mark.skipif(
    not all(shutil.which(t) for t in ("dciodvfy", "dsrdump", "pdftotext")),
    reason="needs dicom3tools, dcmtk and poppler-utils (scripts/ensure-services.sh installs them)",
)
def test_the_sr_and_pdf_carry_the_ga_from_dates(
    analysed_exam, make_user, django_capture_on_commit_callbacks
) -> None:
    study, signoff = _signed(
        analysed_exam, make_user, django_capture_on_commit_callbacks, lmp="2025-09-28"
    )
    generation = ReportGeneration.objects.get(signoff=signoff)
    services.generate_reports(generation_id=generation.pk)

    sr = ReportDocument.objects.get(study=study, kind=ReportKind.SR5000, version=1)
    path = Path(sr.file.path)
    assert validate.dciodvfy(path).errors == []
    assert validate.dsrdump(path).ok
    nums = readback.numeric_items(pydicom.dcmread(path))
    (ga,) = [n for n in nums if n.code[:2] == GA_LOINC and FETUS_SUMMARY in n.path]
    assert ga.value == 168.0 and ga.unit == ("UCUM", "d")
    (equation,) = [c for c in ga.children if c["relationship"] == "INFERRED FROM"]
    assert equation["value"][2] == "Gestational age from dates"

    pdf = ReportDocument.objects.get(study=study, kind=ReportKind.PDF, version=1)
    text = subprocess.run(
        ["pdftotext", "-layout", pdf.file.path, "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Gestational age from dates" in text and "LMP 2025-09-28" in text
    assert "no GA from dates was given" not in text


def test_a_summary_signed_without_a_dating_keeps_the_circular_note(
    analysed_exam, make_user, django_capture_on_commit_callbacks
) -> None:
    _, signoff = _signed(analysed_exam, make_user, django_capture_on_commit_callbacks)
    assert signoff.summary["gestational_dating"] is None
    content = collect(signoff).content
    assert content.ga_used.key != "ga.dates"
    assert CIRCULAR_NOTE in content.notes
