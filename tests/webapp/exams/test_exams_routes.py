"""The three ways exams arrive, each against its real peer, land identical exam records.

Upload: the JSON API through Django's test client (the browser page posts to it). PACS pull:
a real Orthanc with its DICOMweb plugin (STOW-RS in with dicomweb-client, then ``pacs_pull``).
C-STORE: dcmtk's ``storescu`` over DIMSE to ``manage.py dicom_receiver`` in its own process.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict

from tests.webapp.exams.conftest import storescu, us_file
from webapp.exams import services
from webapp.exams.models import (
    Calibration,
    ExamSource,
    Frame,
    IngestEvent,
    Instance,
    PacsNode,
    Patient,
    Study,
    UltrasoundRegion,
)

# Fields that identify the stored copy or the arrival rather than the exam.
ARRIVAL_FIELDS = {
    "id",
    "file",
    "sha256",
    "size_bytes",
    "pixel_data_offset",
    "received_at",
    "received_by",
    "series",
    "instance",
    "patient",
    "pacs_node",
    "created_at",
    "updated_at",
    "status_changed_at",
    "entered_at",
    "sonographer",
    "study",
    "original_filename",
    # Workflow, not content: the analysis pipeline may already have queued the exam.
    "status",
    "failure_reason",
}


def snapshot(sop_uid: str) -> dict:
    """Everything the exam records say about one instance, minus arrival details."""
    instance = Instance.objects.select_related("series__study__patient").get(
        sop_instance_uid=sop_uid
    )
    series = instance.series
    study = series.study

    def clean(obj) -> dict:
        return {k: v for k, v in model_to_dict(obj).items() if k not in ARRIVAL_FIELDS}

    frames = list(Frame.objects.filter(instance=instance).order_by("number"))
    return {
        "patient": clean(study.patient),
        "study": {k: v for k, v in clean(study).items() if k != "source"},
        "series": clean(series),
        "instance": clean(instance),
        "frames": [(f.number, f.time_offset_ms, [ln for _, ln in f.byte_ranges]) for f in frames],
        "regions": [clean(r) for r in UltrasoundRegion.objects.filter(instance=instance)],
        "calibration": clean(Calibration.objects.get(instance=instance)),
    }


def forget(study_uid: str) -> None:
    study = Study.objects.get(study_instance_uid=study_uid)
    for instance in Instance.objects.filter(series__study=study):
        (Path(settings.MEDIA_ROOT) / instance.file.name).unlink()
    patient = study.patient
    study.delete()
    patient.delete()


def upload(client, *files: tuple[str, bytes]) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        "/exams/api/upload",
        {"files": [SimpleUploadedFile(name, data) for name, data in files]},
    )
    assert response.status_code == 200, response.content
    return response.json()


def stow_to_orthanc(orthanc, path: Path) -> None:
    from dicomweb_client.api import DICOMwebClient

    DICOMwebClient(url=orthanc.dicomweb_url).store_instances([pydicom.dcmread(path)])


@pytest.mark.orthanc
@pytest.mark.django_db(transaction=True)
def test_three_routes_land_identical_records(
    client_as, orthanc, dicom_receiver, media_files, analysis_not_dispatched
) -> None:
    # A 30-frame JPEG baseline cine with one US region, and an RLE palette-colour image with a
    # tissue region and a spectral strip.
    names = ["examples_ybr_color.dcm", "OBXXXX1A_rle.dcm"]
    paths = [us_file(n) for n in names]
    originals = [pydicom.dcmread(p) for p in paths]
    sops = [ds.SOPInstanceUID for ds in originals]
    studies = [ds.StudyInstanceUID for ds in originals]
    client = client_as("sonographer")

    def snapshots() -> list[dict]:
        return [snapshot(sop) for sop in sops]

    def forget_all() -> None:
        for uid in studies:
            forget(uid)
        assert media_files() == set()

    # 1. Browser upload (API)
    payload = upload(client, *[(n, p.read_bytes()) for n, p in zip(names, paths, strict=True)])
    assert [r["outcome"] for r in payload["results"]] == ["stored", "stored"]
    by_upload = snapshots()
    study = Study.objects.get(study_instance_uid=studies[0])
    assert study.source == ExamSource.UPLOAD and study.sonographer == client.user
    forget_all()

    # 2. PACS pull over DICOMweb from Orthanc
    orthanc.clear()
    for path in paths:
        stow_to_orthanc(orthanc, path)
    node = PacsNode.objects.create(name="orthanc", dicomweb_url=orthanc.dicomweb_url)
    out = io.StringIO()
    call_command(
        "pacs_pull", "--node", "orthanc", "--study", studies[0], "--study", studies[1], stdout=out
    )
    assert out.getvalue().count("stored") == 2, out.getvalue()
    by_pacs = snapshots()
    study = Study.objects.get(study_instance_uid=studies[0])
    assert study.source == ExamSource.PACS and study.pacs_node == node
    # The PACS's own bytes are kept (WADO-RS with transfer-syntax=*), not a re-encoding.
    for sop, path in zip(sops, paths, strict=True):
        stored = Instance.objects.get(sop_instance_uid=sop).sha256
        assert stored == hashlib.sha256(path.read_bytes()).hexdigest()
    forget_all()

    # 3. Modality C-STORE with storescu
    for path in paths:
        sent = storescu(dicom_receiver, path)
        assert sent.returncode == 0, sent.stderr + dicom_receiver.log()[-2000:]
    by_cstore = snapshots()
    assert Study.objects.get(study_instance_uid=studies[0]).source == ExamSource.CSTORE

    assert by_upload == by_pacs == by_cstore
    cine, still = by_upload
    assert cine["instance"]["number_of_frames"] == 30
    assert cine["instance"]["frame_time_ms"] == pytest.approx(33.333)
    assert cine["frames"][29][1] == pytest.approx(29 * 33.333)
    assert cine["calibration"]["source"] == "us_regions" and len(cine["regions"]) == 1
    assert still["instance"]["photometric_interpretation"] == "PALETTE COLOR"
    assert still["instance"]["transfer_syntax_uid"] == "1.2.840.10008.1.2.5"
    assert [r["physical_units_x"] for r in still["regions"]] == [3, 4]

    # A second C-STORE of the same instance is "already received": success status, no copy.
    again = storescu(dicom_receiver, paths[0])
    assert again.returncode == 0
    assert Instance.objects.filter(sop_instance_uid=sops[0]).count() == 1
    assert IngestEvent.objects.filter(route="cstore", outcome="duplicate").count() == 1
    assert len(media_files()) == 2


@pytest.mark.django_db(transaction=True)
def test_cstore_rejects_bad_dataset_with_failure_status(
    dicom_receiver, tmp_path, media_files
) -> None:
    ds = pydicom.dcmread(us_file("OBXXXX1A.dcm"))
    ds.Rows = 601  # pixel data no longer matches rows × columns
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.99999.1"
    bad = tmp_path / "bad.dcm"
    ds.save_as(bad)
    sent = storescu(dicom_receiver, bad)
    assert sent.returncode != 0
    assert "Received Store Response (Error: CannotUnderstand)" in sent.stderr + sent.stdout
    event = IngestEvent.objects.get(route="cstore", outcome="rejected")
    assert "Pixel Data is 480000 bytes" in event.reason and "480800" in event.reason
    assert "rejected (0xC000)" in dicom_receiver.log()
    assert not Instance.objects.exists() and media_files() == set()
    # Other files in the same run still land
    good = storescu(dicom_receiver, us_file("US1_J2KR.dcm"))
    assert good.returncode == 0
    assert Instance.objects.get().transfer_syntax_uid == "1.2.840.10008.1.2.4.90"


@pytest.mark.django_db(transaction=True)
def test_cstore_exam_belongs_to_the_sonographer_named_in_operators_name(
    dicom_receiver, tmp_path, analysis_not_dispatched
) -> None:
    from django.contrib.auth import get_user_model
    from django.db import IntegrityError, transaction
    from pydicom.uid import generate_uid

    jane = get_user_model().objects.create_user(
        "jdoe", password="x", role="sonographer", dicom_operator_name=" doe^jane^^ "
    )
    assert jane.dicom_operator_name == "DOE^JANE"  # stored as scanners' names are compared

    def send(operators: list[str], name: str) -> Study:
        ds = pydicom.dcmread(us_file("US1_J2KR.dcm"))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.OperatorsName = operators
        path = tmp_path / name
        ds.save_as(path)
        sent = storescu(dicom_receiver, path)
        assert sent.returncode == 0, sent.stderr + dicom_receiver.log()[-2000:]
        return Study.objects.get(study_instance_uid=ds.StudyInstanceUID)

    # the first Operators' Name decides; case and empty name components do not matter
    mine = send(["Doe^Jane", "Smith^Ann"], "mine.dcm")
    assert mine.sonographer == jane
    assert mine.operators_name == "Doe^Jane\\Smith^Ann"  # DICOM's separator, not a Python list
    # an unknown operator: nobody's exam (not a guess)
    assert send(["Smith^Ann"], "other.dcm").sonographer is None
    # two accounts cannot claim one operator name
    with pytest.raises(IntegrityError), transaction.atomic():
        get_user_model().objects.create_user(
            "jdoe2", password="x", role="sonographer", dicom_operator_name="DOE^JANE"
        )


@pytest.mark.orthanc
@pytest.mark.django_db
def test_pacs_page_searches_and_imports(client_as, orthanc) -> None:
    orthanc.clear()
    path = us_file("OBXXXX1A_rle.dcm")
    original = pydicom.dcmread(path)
    stow_to_orthanc(orthanc, path)
    PacsNode.objects.create(name="orthanc", dicomweb_url=orthanc.dicomweb_url)
    client = client_as("obstetrician")
    page = client.get(
        "/exams/pacs/",
        {"search": "1", "node": "orthanc", "patient_id": original.PatientID, "modality": "US"},
    )
    assert page.status_code == 200
    found = page.context["found"]
    assert [s.study_instance_uid for s in found] == [original.StudyInstanceUID]
    assert original.StudyInstanceUID in page.content.decode()
    result = client.post("/exams/pacs/", {"node": "orthanc", "study": [original.StudyInstanceUID]})
    assert result.status_code == 200
    [item] = result.context["imported"]
    assert [r.outcome for r in item["results"]] == ["stored"]
    instance = Instance.objects.get(sop_instance_uid=original.SOPInstanceUID)
    assert instance.transfer_syntax_uid == "1.2.840.10008.1.2.5"
    # Searching again shows it as already here
    page = client.get("/exams/pacs/", {"search": "1", "node": "orthanc", "modality": "US"})
    assert [s.already_here for s in page.context["found"]] == [True]
    bad = client.get("/exams/pacs/", {"search": "1", "node": "orthanc", "date_from": "2020-13-01"})
    assert bad.status_code == 400 and "not a date" in bad.content.decode()


@pytest.mark.django_db
def test_pacs_unreachable_is_a_clear_message(client_as, closed_port, settings) -> None:
    settings.PACS_DICOMWEB_URL = f"http://127.0.0.1:{closed_port}/dicom-web"
    client = client_as("obstetrician")
    page = client.get("/exams/pacs/", {"search": "1", "node": "default"})
    assert PacsNode.objects.get().dicomweb_url == settings.PACS_DICOMWEB_URL  # from the setting
    assert page.status_code == 502
    assert "PACS default could not be searched" in page.content.decode()
    with pytest.raises(CommandError, match="no active PACS node named 'nope' \\(known: default\\)"):
        call_command("pacs_pull", node="nope", since="today")


@pytest.mark.django_db
def test_upload_api_batch_with_zip_images_duplicates_and_bad_files(client_as, media_files) -> None:
    client = client_as("sonographer")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("exam/a/US1_UNCR.dcm", us_file("US1_UNCR.dcm").read_bytes())
        zf.writestr("exam/b/OBXXXX1A_rle.dcm", us_file("OBXXXX1A_rle.dcm").read_bytes())
        zf.writestr("../../etc/evil.dcm", b"x")
    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(__import__("numpy").full((60, 80, 3), 120, dtype="uint8")).save(
        png, format="PNG"
    )
    payload = upload(
        client,
        ("exam.zip", zipped.getvalue()),
        ("scan.png", png.getvalue()),
        ("notes.dcm", b"this is not DICOM at all" * 20),
        ("US1_UNCR-again.dcm", us_file("US1_UNCR.dcm").read_bytes()),
        ("scan-copy.png", png.getvalue()),
    )
    outcomes = {r["file_name"]: (r["outcome"], r["reason"]) for r in payload["results"]}
    assert outcomes["exam.zip/exam/a/US1_UNCR.dcm"][0] == "stored"
    assert outcomes["exam.zip/exam/b/OBXXXX1A_rle.dcm"][0] == "stored"
    assert outcomes["exam.zip/../../etc/evil.dcm"] == (
        "rejected",
        "zip member name contains '..': refused (path traversal)",
    )
    assert outcomes["scan.png"][0] == "stored"
    assert outcomes["notes.dcm"] == (
        "rejected",
        "not a DICOM file (no 'DICM' marker at byte 128), although named .dcm",
    )
    assert outcomes["US1_UNCR-again.dcm"][0] == "duplicate"
    assert "already received" in outcomes["US1_UNCR-again.dcm"][1]
    assert outcomes["scan-copy.png"][0] == "duplicate"
    assert (payload["stored"], payload["duplicates"], payload["rejected"]) == (3, 2, 2)
    png_instance = Instance.objects.get(converted_from="png")
    assert (png_instance.rows, png_instance.columns, png_instance.photometric_interpretation) == (
        60,
        80,
        "RGB",
    )
    assert png_instance.calibration_source == "none"
    assert len(media_files()) == 3
    assert IngestEvent.objects.filter(outcome="rejected").count() == 2
    assert not list((Path(settings.MEDIA_ROOT) / "incoming").glob("*.part"))


@pytest.mark.django_db
def test_upload_page_and_permissions(client, client_as) -> None:
    assert client.get("/exams/upload/").status_code == 302  # to the login page
    assert client.post("/exams/api/upload").status_code == 401
    supervisor = client_as("supervisor")
    assert supervisor.post("/exams/api/upload", {"files": []}).status_code == 403
    sonographer = client_as("sonographer")
    page = sonographer.get("/exams/upload/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'type="file" multiple' in html and 'upload.addEventListener("progress"' in html
    assert (
        sonographer.post("/exams/api/upload", {}).json()["error"]
        == "no files were sent (form field 'files')"
    )


@pytest.mark.django_db
def test_ingest_dicom_command_dirs_and_exit_status(tmp_path, media_files) -> None:
    folder = tmp_path / "exam" / "nested"
    folder.mkdir(parents=True)
    shutil.copy(us_file("OBXXXX1A_2frame.dcm"), folder / "cine.dcm")
    shutil.copy(us_file("gdcm-US-ALOKA-16.dcm"), tmp_path / "exam" / "aloka.dcm")
    out = io.StringIO()
    call_command("ingest_dicom", str(tmp_path / "exam"), stdout=out)
    assert "2 stored, 0 already received, 0 rejected" in out.getvalue()
    (tmp_path / "broken.dcm").write_bytes(us_file("US1_UNCR.dcm").read_bytes()[:5000])
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command(
            "ingest_dicom",
            str(tmp_path / "broken.dcm"),
            str(tmp_path / "exam" / "aloka.dcm"),
            stdout=out,
        )
    assert exit_info.value.code == 1
    text = out.getvalue()
    assert "rejected  " in text and "truncated" in text
    assert "0 stored, 1 already received, 1 rejected" in text
    assert Patient.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_associations_for_one_new_exam_make_one_exam(
    dicom_receiver, media_files
) -> None:
    import concurrent.futures

    # Three images of one study, sent at once on three associations (the receiver runs one
    # thread per association, so all three race to create the same patient and study).
    names = ["US1_UNCR.dcm", "US1_UNCI.dcm", "US1_J2KR.dcm"]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        sent = list(pool.map(lambda n: storescu(dicom_receiver, us_file(n)), names))
    assert [s.returncode for s in sent] == [0, 0, 0], [s.stderr for s in sent]
    assert Study.objects.count() == 1 and Patient.objects.count() == 1
    assert Instance.objects.filter(series__study=Study.objects.get()).count() == 3
    assert len(media_files()) == 3


@pytest.mark.orthanc
@pytest.mark.django_db
def test_pacs_pull_since_date(orthanc) -> None:
    orthanc.clear()
    path = us_file("OBXXXX1A_2frame.dcm")
    original = pydicom.dcmread(path)
    stow_to_orthanc(orthanc, path)
    PacsNode.objects.create(name="orthanc", dicomweb_url=orthanc.dicomweb_url)
    study_date = f"{original.StudyDate[:4]}-{original.StudyDate[4:6]}-{original.StudyDate[6:8]}"
    out = io.StringIO()
    call_command("pacs_pull", node="orthanc", since="2999-01-01", stdout=out)
    assert out.getvalue().startswith("0 US studies on orthanc since 2999-01-01")
    out = io.StringIO()
    call_command("pacs_pull", node="orthanc", since=study_date, stdout=out)
    assert f"1 US studies on orthanc since {study_date}" in out.getvalue()
    assert Instance.objects.get().number_of_frames == 2
    out = io.StringIO()
    call_command("pacs_pull", node="orthanc", since=study_date, stdout=out)  # scheduled again
    assert "duplicate" in out.getvalue() and Instance.objects.count() == 1


@pytest.mark.django_db
def test_upload_page_lists_recent_refusals(client_as) -> None:
    services.record_rejection(
        "MODALITY:1.2.3", "Pixel Data is 10 bytes but …", route="cstore", peer="US1@10.0.0.7"
    )
    sonographer = client_as("sonographer")
    upload(sonographer, ("x.dcm", b"nonsense" * 30))
    html = sonographer.get("/exams/upload/").content.decode()
    assert "x.dcm" in html and "MODALITY:1.2.3" not in html  # only their own
    admin = client_as("admin")
    html = admin.get("/exams/upload/").content.decode()
    assert "MODALITY:1.2.3" in html and "US1@10.0.0.7" in html and "x.dcm" in html
