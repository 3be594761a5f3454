"""The site's DICOMweb subset, spoken to as Cornerstone3D's wadors: loader speaks it.

A client parses the multipart/related frame responses by the boundary in Content-Type and the
part header ``Content-Type: application/octet-stream; transfer-syntax=…``, decodes what it got
(compressed frames with pydicom's decoders, native frames as raw little-endian pixels) and
compares every frame with pydicom's own decoding of the original file.
"""

from __future__ import annotations

import re

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate

from tests.webapp.exams.conftest import us_file
from webapp.exams import services
from webapp.exams.models import AuditEvent, ExamSource


def parse_multipart(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    assert match, content_type
    boundary = b"--" + match.group(1).encode()
    parts = []
    for chunk in body.split(boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            headers[name] = value.strip()
        parts.append((headers, data[:-2] if data.endswith(b"\r\n") else data))
    return parts


def decode_part(data: bytes, transfer_syntax: str, meta: dict) -> np.ndarray:
    """Decode one frame from its DICOMweb part, as a viewer would, using only the metadata."""
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.Rows = meta["00280010"]["Value"][0]
    ds.Columns = meta["00280011"]["Value"][0]
    ds.SamplesPerPixel = meta["00280002"]["Value"][0]
    ds.PhotometricInterpretation = meta["00280004"]["Value"][0]
    ds.BitsAllocated = meta["00280100"]["Value"][0]
    ds.BitsStored = meta["00280101"]["Value"][0]
    ds.HighBit = meta["00280102"]["Value"][0]
    ds.PixelRepresentation = meta["00280103"]["Value"][0]
    if "00280006" in meta:
        ds.PlanarConfiguration = meta["00280006"]["Value"][0]
    ds.NumberOfFrames = 1
    if transfer_syntax in (pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian):
        ds.PixelData = data
    else:
        ds.PixelData = encapsulate([data])
    ds["PixelData"].VR = "OB" if ds.BitsAllocated == 8 else "OW"
    return ds.pixel_array


def ingest(name: str, user=None):
    [result] = services.ingest_batch(
        files=[(name, us_file(name))], route=ExamSource.UPLOAD, user=user
    )
    assert result.outcome == "stored", result
    return result


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    [
        "examples_ybr_color.dcm",  # 30-frame JPEG baseline YBR_FULL_422 cine with a US region
        "OBXXXX1A_rle_2frame.dcm",  # RLE palette colour, 2 frames
        "OBXXXX1A_expb_2frame.dcm",  # big endian native palette colour, 2 frames
        "US1_J2KR.dcm",  # JPEG 2000 lossless RGB
    ],
)
def test_every_frame_over_dicomweb_matches_pydicom(name: str, client_as) -> None:
    client = client_as("obstetrician")
    result = ingest(name)
    original = pydicom.dcmread(us_file(name))
    expected = original.pixel_array
    frames = int(original.get("NumberOfFrames", 1))
    if frames == 1:
        expected = expected[None]

    study_meta = client.get(f"/dicomweb/studies/{result.study_instance_uid}/metadata")
    assert study_meta.status_code == 200
    assert study_meta["Content-Type"] == "application/dicom+json"
    [meta] = study_meta.json()
    series_uid = meta["0020000E"]["Value"][0]
    assert meta["00080018"]["Value"] == [original.SOPInstanceUID]
    assert meta["00280008"]["Value"] == [frames]
    bulk = meta["7FE00010"]["BulkDataURI"]
    base = f"/dicomweb/studies/{result.study_instance_uid}/series/{series_uid}/instances/{original.SOPInstanceUID}"
    assert bulk == f"http://testserver{base}"
    if original.PhotometricInterpretation == "PALETTE COLOR":
        lut = meta["00281201"]["Value"]
        assert len(lut) == 256 and all(isinstance(v, int) for v in lut)

    accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    for number in range(1, frames + 1):
        response = client.get(f"{base}/frames/{number}", HTTP_ACCEPT=accept)
        assert response.status_code == 200, response.content[:200]
        assert response["Content-Type"].startswith(
            'multipart/related; type="application/octet-stream"'
        )
        [(headers, data)] = parse_multipart(response.content, response["Content-Type"])
        content_type = headers["Content-Type"]
        assert content_type.startswith("application/octet-stream; transfer-syntax=")
        ts = content_type.split("transfer-syntax=")[1]
        assert ts == meta["00020010"]["Value"][0]
        got = decode_part(data, ts, meta)
        np.testing.assert_array_equal(got, expected[number - 1], err_msg=f"frame {number}")

    # Several frames in one request, as Orthanc allows: /frames/1,2
    if frames >= 2:
        response = client.get(f"{base}/frames/1,2", HTTP_ACCEPT=accept)
        assert len(parse_multipart(response.content, response["Content-Type"])) == 2
    # Audit: the frame reads were recorded once (not once per frame), by the signed-in user.
    events = AuditEvent.objects.filter(object_id=str(result.instance_id), detail="DICOMweb frames")
    assert events.count() == 1
    assert events.get().username == client.user.username


@pytest.mark.django_db
def test_compressed_frame_transcoded_when_client_asks_for_raw(client_as) -> None:
    client = client_as("obstetrician")
    result = ingest("US1_J2KI.dcm")
    original = pydicom.dcmread(us_file("US1_J2KI.dcm"))
    instances = client.get(f"/dicomweb/studies/{result.study_instance_uid}/metadata").json()
    series_uid = instances[0]["0020000E"]["Value"][0]
    url = f"/dicomweb/studies/{result.study_instance_uid}/series/{series_uid}/instances/{original.SOPInstanceUID}/frames/1"
    response = client.get(
        url,
        HTTP_ACCEPT='multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1',
    )
    [(headers, data)] = parse_multipart(response.content, response["Content-Type"])
    assert (
        headers["Content-Type"] == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    )
    got = np.frombuffer(data, dtype=np.uint8).reshape(original.Rows, original.Columns, 3)
    np.testing.assert_array_equal(got, original.pixel_array)
    refused = client.get(url, HTTP_ACCEPT='multipart/related; type="image/jp2"')
    assert refused.status_code == 406


@pytest.mark.django_db
def test_dicomweb_needs_sign_in_and_hides_other_sonographers_exams(client, make_user) -> None:
    owner = make_user("sonographer")
    result = ingest("US1_UNCR.dcm", user=owner)
    url = f"/dicomweb/studies/{result.study_instance_uid}/metadata"
    assert client.get(url).status_code == 401
    client.force_login(make_user("sonographer"))
    assert client.get(url).status_code == 404
    assert client.get(f"/exams/instances/{result.sop_instance_uid}/thumbnail").status_code == 404
    client.force_login(owner)
    assert client.get(url).status_code == 200
    client.force_login(make_user("obstetrician"))
    assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_rendered_frame_and_thumbnail(client_as) -> None:
    from io import BytesIO

    from PIL import Image

    client = client_as("obstetrician")
    result = ingest("examples_ybr_color.dcm")
    sop = result.sop_instance_uid
    png = client.get(f"/exams/instances/{sop}/frames/30/rendered")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    image = Image.open(BytesIO(png.content))
    assert image.size == (320, 240) and image.mode == "RGB"
    expected = pydicom.dcmread(us_file("examples_ybr_color.dcm")).pixel_array[29].astype(int)
    # Display decodes JPEG with Pillow's libjpeg: within a few grey levels of pydicom's.
    difference = np.abs(np.asarray(image).astype(int) - expected)
    assert difference.max() <= 8 and difference.mean() < 0.5
    small = client.get(f"/exams/instances/{sop}/frames/2/rendered?size=128&format=jpeg")
    assert Image.open(BytesIO(small.content)).size == (128, 96)
    thumb = client.get(f"/exams/instances/{sop}/thumbnail")
    assert thumb["Content-Type"] == "image/jpeg"
    assert Image.open(BytesIO(thumb.content)).size == (128, 96)
    missing = client.get(f"/exams/instances/{sop}/frames/31/rendered")
    assert missing.status_code == 404
    assert "frame 31 does not exist" in missing.json()["error"]


@pytest.mark.django_db
def test_exam_pages_list_detail_and_audit(client_as) -> None:
    client = client_as("obstetrician")
    result = ingest("examples_palette.dcm")
    listing = client.get("/exams/")
    assert listing.status_code == 200
    assert f"/exams/{result.study_id}/" in listing.content.decode()
    page = client.get(f"/exams/{result.study_id}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f"/exams/instances/{result.sop_instance_uid}/thumbnail" in html
    assert "calibration: Sequence of Ultrasound Regions" in html and "(2 regions)" in html
    assert (
        f'data-wadors="http://testserver/dicomweb/studies/{result.study_instance_uid}/series/'
        in html
    )
    event = AuditEvent.objects.get(action="view", object_type="Study", detail="exam page")
    assert (event.username, event.study_instance_uid, event.ip_address) == (
        client.user.username,
        result.study_instance_uid,
        "127.0.0.1",
    )
    assert client.get("/exams/999999/").status_code == 404
