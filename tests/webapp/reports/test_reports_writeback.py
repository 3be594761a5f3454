"""Write-back to a real Orthanc over STOW-RS: objects read back equal, amendments add a version
(old one kept), a PACS that is down never blocks the sign-off and ends with the admins told."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from inference.reporting import readback
from tests.webapp.reports.conftest import decide_all, sign
from webapp.exams.models import AuditEvent, ExamStatus, PacsNode
from webapp.reports import services
from webapp.reports.models import (
    ReportDocument,
    ReportGeneration,
    ReportKind,
    Writeback,
    WritebackStatus,
)

pytestmark = pytest.mark.django_db


def _client(orthanc):
    from dicomweb_client.api import DICOMwebClient

    return DICOMwebClient(url=orthanc.dicomweb_url)


def _generate(study, signoff):
    generation = ReportGeneration.objects.get(signoff=signoff)
    return services.generate_reports(generation_id=generation.pk)


def _send_all(docs) -> None:
    for doc in docs:
        if doc.is_dicom:
            outcome = services.send_writeback(writeback_id=doc.writeback.pk)
            assert outcome.status == WritebackStatus.SENT, Writeback.objects.get(
                pk=doc.writeback.pk
            ).last_error


@pytest.mark.orthanc
def test_stow_to_orthanc_reads_back_equal_and_an_amendment_adds_version_2(
    orthanc, analysed_exam, make_user, django_capture_on_commit_callbacks
) -> None:
    from webapp.review import services as review

    node = PacsNode.objects.create(name="test-orthanc", dicomweb_url=orthanc.dicomweb_url)
    study = analysed_exam(pacs_node=node)
    doctor = make_user("obstetrician", first_name="Olivia", last_name="Obstetrician")
    decide_all(study, doctor)
    with django_capture_on_commit_callbacks(execute=False):
        signoff1 = sign(study, doctor)
    docs1 = _generate(study, signoff1)
    dicom1 = [d for d in docs1 if d.is_dicom]
    assert all(d.writeback.status == WritebackStatus.PENDING for d in dicom1)
    assert all(d.writeback.pacs_node == node for d in dicom1)
    _send_all(docs1)

    client = _client(orthanc)
    for doc in dicom1:
        wb = Writeback.objects.get(document=doc)
        assert wb.status == WritebackStatus.SENT and wb.attempts == 1 and wb.sent_at
        back = client.retrieve_instance(
            study.study_instance_uid, doc.series_instance_uid, doc.sop_instance_uid
        )
        sent = pydicom.dcmread(doc.file.path)
        assert back.SOPInstanceUID == doc.sop_instance_uid
        assert back == sent, f"{doc} differs after the round trip"
    sr_back = client.retrieve_instance(
        study.study_instance_uid,
        next(d for d in dicom1 if d.kind == ReportKind.SR5000).series_instance_uid,
        next(d for d in dicom1 if d.kind == ReportKind.SR5000).sop_instance_uid,
    )
    values = {
        n.code[1]: n.value for n in readback.numeric_items(sr_back) if n.unit == ("UCUM", "mm")
    }
    final = signoff1.summary["final_values_mm"]
    assert values == pytest.approx(
        {
            "11820-8": final["BPD"],
            "11984-2": final["HC"],
            "11979-2": final["AC"],
            "11963-6": final["FL"],
            "11851-3": final["OFD"],
        },
        abs=0.05,  # the summary is signed at 0.1 mm; the SR keeps the measured value
    )
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.EXPORT, study_instance_uid=study.study_instance_uid
    ).count() == len(dicom1)

    # Amendment: open it, edit BPD, sign again → version 2 of every report; version 1 is kept.
    pdf1 = ReportDocument.objects.get(study=study, kind=ReportKind.PDF, version=1)
    pdf1_bytes = Path(pdf1.file.path).read_bytes()
    review.amend_exam(study=study, user=doctor, reason="BPD calipers were placed on the wrong echo")
    (bpd,) = [f for f in review.ai.ai_findings(study, types=("measurement",)) if f.label == "BPD"]
    version = review.latest_decisions(study)[("measurement", bpd.id)].version
    (x0, y0), (x1, y1) = bpd.geometry_px["points"]
    review.decide_finding(
        study=study,
        finding_type="measurement",
        finding_id=bpd.id,
        action="edited",
        version=version,
        user=doctor,
        geometry_px={"type": "line", "points": [[x0, y0], [x1 + 6, y1]]},
    )
    with django_capture_on_commit_callbacks(execute=False):
        signoff2 = sign(study, doctor)
    assert signoff2.sequence == 2 and study.status == ExamStatus.SIGNED
    docs2 = _generate(study, signoff2)
    _send_all(docs2)

    pdf2 = ReportDocument.objects.get(study=study, kind=ReportKind.PDF, version=2)
    assert pdf2.supersedes == pdf1 and Path(pdf1.file.path).read_bytes() == pdf1_bytes
    assert pdf2.sha256 != pdf1.sha256
    import subprocess

    text2 = subprocess.run(
        ["pdftotext", "-layout", pdf2.file.path, "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Amendments" in text2 and "BPD calipers were placed on the wrong echo" in text2
    assert "2 (amended)" in text2 and "signature 2" in text2
    sr1 = ReportDocument.objects.get(study=study, kind=ReportKind.SR5000, version=1)
    sr2 = ReportDocument.objects.get(study=study, kind=ReportKind.SR5000, version=2)
    assert sr2.supersedes == sr1 and sr2.sop_instance_uid != sr1.sop_instance_uid
    assert sr2.series_instance_uid == sr1.series_instance_uid
    ds2 = pydicom.dcmread(sr2.file.path)
    predecessor = ds2.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0]
    assert predecessor.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == sr1.sop_instance_uid
    bpd2 = next(n.value for n in readback.numeric_items(ds2) if n.code[1] == "11820-8")
    assert bpd2 == pytest.approx(signoff2.summary["final_values_mm"]["BPD"], abs=0.05)
    assert bpd2 != pytest.approx(final["BPD"], abs=0.5)
    # The derived frames did not change: the same objects, not sent twice.
    assert {d.pk for d in docs2 if d.kind == ReportKind.DERIVED_IMAGE} == {
        d.pk for d in docs1 if d.kind == ReportKind.DERIVED_IMAGE
    }
    # The PACS now holds both SR versions.
    found = client.search_for_instances(study.study_instance_uid, sr1.series_instance_uid)
    uids = {i["00080018"]["Value"][0] for i in found}
    assert {sr1.sop_instance_uid, sr2.sop_instance_uid} <= uids


@pytest.mark.orthanc
def test_a_pacs_that_is_down_never_blocks_sign_off_retries_and_then_tells_admins(
    orthanc, closed_port, analysed_exam, client_as, django_capture_on_commit_callbacks, settings
) -> None:
    settings.REPORTS_STOW_MAX_ATTEMPTS = 2
    settings.REPORTS_STOW_BACKOFF_S = (5, 60)
    settings.ADMINS = [("PACS admin", "pacs-admin@example.org")]
    node = PacsNode.objects.create(
        name="down", dicomweb_url=f"http://127.0.0.1:{closed_port}/dicom-web", timeout_seconds=3
    )
    study = analysed_exam(pacs_node=node)
    web = client_as("obstetrician")
    doctor = web.user
    decide_all(study, doctor)
    with django_capture_on_commit_callbacks(execute=False):
        signoff = sign(study, doctor)
    study.refresh_from_db()
    assert study.status == ExamStatus.SIGNED  # the PACS has not been contacted yet, nor needed
    docs = _generate(study, signoff)
    sr = next(d for d in docs if d.kind == ReportKind.SR5000)

    before = timezone.now()
    first = services.send_writeback(writeback_id=sr.writeback.pk)
    wb = Writeback.objects.get(pk=sr.writeback.pk)
    assert first.status == WritebackStatus.RETRYING and first.retry_in_s == 5
    assert wb.attempts == 1 and "Connection" in wb.last_error
    assert wb.next_retry_at is not None and wb.next_retry_at >= before
    assert mail.outbox == []

    second = services.send_writeback(writeback_id=sr.writeback.pk)
    wb.refresh_from_db()
    assert second.status == WritebackStatus.FAILED and wb.status == WritebackStatus.FAILED
    assert wb.attempts == 2 and wb.admins_notified_at is not None and wb.next_retry_at is None
    (message,) = mail.outbox
    assert "PACS write-back failed" in message.subject and sr.sop_instance_uid in message.body
    assert message.to == ["pacs-admin@example.org"]
    # A third delivery of the task (e.g. a late retry) does nothing more.
    assert services.send_writeback(writeback_id=sr.writeback.pk).status == WritebackStatus.FAILED
    assert len(mail.outbox) == 1

    panel = web.get(reverse("reports:panel", args=[study.pk]))
    assert panel.status_code == 200
    html = panel.content.decode()
    assert "could not be sent to the PACS" in html and 'data-status="failed"' in html
    assert "Send again" in html

    # The PACS comes back; an obstetrician presses "Send again": it goes through.
    node.dicomweb_url = orthanc.dicomweb_url
    node.save()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = web.post(
            reverse("reports:retry", args=[study.pk]),
            {"writeback": sr.writeback.pk},
            HTTP_REFERER=f"http://testserver/review/exams/{study.pk}/",
        )
    assert response.status_code == 302 and len(callbacks) == 1
    assert response["Location"] == f"http://testserver/review/exams/{study.pk}/"
    wb.refresh_from_db()
    assert wb.status == WritebackStatus.PENDING and wb.attempts == 0
    assert services.send_writeback(writeback_id=wb.pk).status == WritebackStatus.SENT
    found = _client(orthanc).search_for_instances(study.study_instance_uid)
    assert sr.sop_instance_uid in {i["00080018"]["Value"][0] for i in found}

    pdf = next(d for d in docs if d.kind == ReportKind.PDF)
    download = web.get(reverse("reports:download", args=[pdf.pk]))
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert b"".join(download.streaming_content).startswith(b"%PDF")
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.EXPORT, user=doctor, detail__startswith="download PDF report"
    ).exists()


def test_a_sonographer_cannot_download_someone_elses_report(
    analysed_exam, make_user, client, django_capture_on_commit_callbacks
) -> None:
    study = analysed_exam()
    owner = make_user("sonographer")
    study.sonographer = owner
    study.save(update_fields=["sonographer"])
    doctor = make_user("obstetrician")
    decide_all(study, doctor)
    with django_capture_on_commit_callbacks(execute=False):
        signoff = sign(study, doctor)
    # Only the rows matter here: a document row pointing at a small file.
    from django.core.files.base import ContentFile

    doc = ReportDocument(
        study=study,
        signoff=signoff,
        kind=ReportKind.PDF,
        version=1,
        sha256="0" * 64,
        size_bytes=4,
        content_type="application/pdf",
    )
    doc.file.save("test/report.pdf", ContentFile(b"%PDF"), save=True)
    other = make_user("sonographer")
    client.force_login(other)
    assert client.get(reverse("reports:download", args=[doc.pk])).status_code == 404
    assert client.get(reverse("reports:panel", args=[study.pk])).status_code == 404
    client.force_login(owner)
    assert client.get(reverse("reports:download", args=[doc.pk])).status_code == 200


def test_the_sweep_queues_due_write_backs_and_unfinished_generations(
    analysed_exam, make_user, django_capture_on_commit_callbacks, closed_port, monkeypatch
) -> None:
    # The broker round trip is the worker test's job; here only what the sweep picks matters.
    published: list[tuple[str, int]] = []
    monkeypatch.setattr(
        services, "_publish_stow", lambda pk, countdown=0: published.append(("stow", pk))
    )
    monkeypatch.setattr(services, "_publish_generation", lambda pk: published.append(("gen", pk)))
    node = PacsNode.objects.create(
        name="sweep", dicomweb_url=f"http://127.0.0.1:{closed_port}/dicom-web", timeout_seconds=2
    )
    study = analysed_exam(pacs_node=node)
    doctor = make_user("obstetrician")
    decide_all(study, doctor)
    with django_capture_on_commit_callbacks(execute=False):
        signoff = sign(study, doctor)
    generation = ReportGeneration.objects.get(signoff=signoff)
    assert services.sweep(stale_after_s=3600) == (0, 0)  # nothing is overdue yet
    assert services.sweep(stale_after_s=0) == (1, 0)
    assert published == [("gen", generation.pk)]
    docs = _generate(study, signoff)
    sr = next(d for d in docs if d.kind == ReportKind.SR5000)
    services.send_writeback(writeback_id=sr.writeback.pk)  # fails: retrying, due later
    published.clear()
    _, due = services.sweep(stale_after_s=3600)
    assert due == 0
    Writeback.objects.filter(pk=sr.writeback.pk).update(next_retry_at=timezone.now())
    assert services.sweep(stale_after_s=3600) == (0, 1)
    assert published == [("stow", sr.writeback.pk)]


def test_the_panel_tag_renders_inside_another_page(analysed_exam, rf, make_user) -> None:
    from django.template import Context, Template

    study = analysed_exam()
    request = rf.get("/")
    request.user = make_user("obstetrician")
    html = Template("{% load reports %}{% report_panel study %}").render(
        Context({"study": study, "request": request})
    )
    assert 'id="report-panel"' in html and "reports are made when the exam is signed" in html
