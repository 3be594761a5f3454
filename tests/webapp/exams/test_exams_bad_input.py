"""Bad input: each gets a clear reason naming what is wrong; nothing half-saved, no orphan file."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from pydicom.uid import ExplicitVRLittleEndian

from tests.webapp.exams.conftest import us_file
from webapp.exams import services
from webapp.exams.models import IngestEvent, Instance, Patient, Series, Study


def ingest_bytes(name: str, data: bytes) -> services.IngestResult:
    [result] = services.ingest_batch(files=[(name, data)], route="upload")
    return result


def as_bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def assert_nothing_stored(media_files) -> None:
    assert not Instance.objects.exists()
    assert (
        not Study.objects.exists() and not Series.objects.exists() and not Patient.objects.exists()
    )
    assert media_files() == set()
    assert not list((Path(settings.MEDIA_ROOT) / "incoming").glob("*.part"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("truncated", "the file is truncated"),
        ("not_dicom", "not a DICOM file (no 'DICM' marker at byte 128), although named .dcm"),
        ("empty", "the file is empty"),
        ("unsupported_ts", "unsupported transfer syntax 1.2.840.10008.1.2.4.100"),
        (
            "length_mismatch",
            "Pixel Data is 921600 bytes but rows × columns × frames × samples × bytes = 480×640×2×3×1 = 1843200 bytes",
        ),
        ("absurd_size", "image size 60000×60000 is beyond the limit of 8192×8192 pixels"),
        ("no_pixels", "the object has no Pixel Data (7FE0,0010): it is not an image"),
        ("bad_uid", "SOPInstanceUID '../../etc/passwd' is not a valid DICOM UID"),
        ("corrupt_jpeg", "frame 1 cannot be decoded"),
    ],
)
def test_bad_dicom_is_rejected_with_reason(case: str, expected: str, media_files) -> None:
    original = us_file("US1_UNCR.dcm").read_bytes()
    if case == "truncated":
        data = original[: len(original) - 1000]
    elif case == "not_dicom":
        data = b"%PDF-1.4 this is a report, not an image" * 10
    elif case == "empty":
        data = b""
    else:
        ds = pydicom.dcmread(us_file("US1_UNCR.dcm"))
        if case == "unsupported_ts":
            ds = pydicom.dcmread(us_file("examples_ybr_color.dcm"))  # encapsulated, as video is
            ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG-2 video
        elif case == "length_mismatch":
            ds.NumberOfFrames = 2
        elif case == "absurd_size":
            ds.Rows = ds.Columns = 60000
        elif case == "no_pixels":
            del ds.PixelData
        elif case == "bad_uid":
            ds.SOPInstanceUID = "../../etc/passwd"
        elif case == "corrupt_jpeg":
            ds = pydicom.dcmread(us_file("examples_ybr_color.dcm"))
            frames = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=30))
            frames[0] = frames[0][:20] + b"\x00" * (len(frames[0]) - 20)
            ds.PixelData = pydicom.encaps.encapsulate(frames)
        data = as_bytes(ds)
    result = ingest_bytes("case.dcm", data)
    assert result.outcome == "rejected"
    assert expected in result.reason
    event = IngestEvent.objects.get()
    assert (event.outcome, event.file_name, event.reason) == ("rejected", "case.dcm", result.reason)
    assert_nothing_stored(media_files)


@pytest.mark.django_db
def test_rest_of_batch_lands_when_one_file_is_bad(media_files) -> None:
    results = services.ingest_batch(
        files=[
            ("good.dcm", us_file("US1_UNCR.dcm")),
            ("bad.dcm", us_file("US1_J2KR.dcm").read_bytes()[:3000]),
            ("good2.dcm", us_file("OBXXXX1A_2frame.dcm")),
        ],
        route="upload",
    )
    assert [r.outcome for r in results] == ["stored", "rejected", "stored"]
    assert Instance.objects.count() == 2 and len(media_files()) == 2


@pytest.mark.django_db
def test_zip_bomb_and_traversal(media_files, monkeypatch) -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.dcm", b"\0" * (20 * 1024 * 1024))  # ~1000:1
        zf.writestr("/abs/path.dcm", us_file("US1_UNCR.dcm").read_bytes())
        zf.writestr("ok/US1_UNCR.dcm", us_file("US1_UNCR.dcm").read_bytes())
    results = {
        r.file_name: r
        for r in services.ingest_batch(files=[("b.zip", bomb.getvalue())], route="upload")
    }
    assert results["b.zip/zeros.dcm"].outcome == "rejected"
    assert "is beyond 200:1: refused as a possible zip bomb" in results["b.zip/zeros.dcm"].reason
    assert (
        results["b.zip//abs/path.dcm"].reason
        == "zip member has an absolute path: refused (path traversal)"
    )
    assert results["b.zip/ok/US1_UNCR.dcm"].outcome == "stored"
    # Total expanded size limit
    monkeypatch.setattr(services, "MAX_ZIP_TOTAL_BYTES", 1_000_000)
    [total] = services.ingest_batch(files=[("big.zip", bomb.getvalue())], route="upload")
    assert total.outcome == "rejected" and "refused as a possible zip bomb" in total.reason
    assert len(media_files()) == 1


@pytest.mark.django_db
def test_database_failure_leaves_no_file_and_no_rows(media_files, monkeypatch) -> None:
    from webapp.exams.models import Frame

    def broken_bulk_create(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Frame.objects, "bulk_create", broken_bulk_create)
    with pytest.raises(RuntimeError):
        services.ingest_file(source=us_file("US1_UNCR.dcm"), file_name="a.dcm", route="upload")
    assert_nothing_stored(media_files)


@pytest.mark.django_db
def test_signed_exam_takes_no_new_images(media_files) -> None:
    first = services.ingest_file(source=us_file("US1_UNCR.dcm"), file_name="a.dcm", route="upload")
    study = Study.objects.get(pk=first.study_id)
    Study.objects.filter(pk=study.pk).update(status="signed")
    second = services.ingest_file(source=us_file("US1_J2KR.dcm"), file_name="b.dcm", route="upload")
    assert second.outcome == "rejected"
    assert "is already signed; new images cannot be added" in second.reason
    assert Instance.objects.count() == 1 and len(media_files()) == 1


@pytest.mark.django_db
def test_upload_api_reports_reasons_in_json(client_as) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_as("obstetrician")
    ds = pydicom.dcmread(us_file("US1_UNCR.dcm"))
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows = ds.Columns = 60000
    response = client.post(
        "/exams/api/upload",
        {
            "files": [
                SimpleUploadedFile("huge.dcm", as_bytes(ds)),
                SimpleUploadedFile("ok.dcm", us_file("US1_UNCR.dcm").read_bytes()),
            ]
        },
    )
    body = response.json()
    assert [(r["file_name"], r["outcome"]) for r in body["results"]] == [
        ("huge.dcm", "rejected"),
        ("ok.dcm", "stored"),
    ]
    assert (
        body["results"][0]["reason"]
        == "image size 60000×60000 is beyond the limit of 8192×8192 pixels"
    )


@pytest.mark.django_db
def test_zip_member_lying_about_its_size_is_rejected(media_files) -> None:
    data = us_file("US1_UNCR.dcm").read_bytes()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("liar.dcm", data)
    raw = bytearray(archive.getvalue())
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (4096).to_bytes(4, "little")  # declares 4 kB
    [result] = services.ingest_batch(files=[("l.zip", bytes(raw))], route="upload")
    assert result.outcome == "rejected"
    assert result.reason.startswith("cannot be extracted from the zip archive (Bad CRC-32")
    assert media_files() == set()
