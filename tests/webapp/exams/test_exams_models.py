"""The exam status machine and the user calibration of non-DICOM images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.webapp.exams.conftest import us_file
from webapp.exams import services
from webapp.exams.models import (
    AuditEvent,
    Calibration,
    ExamStatus,
    Instance,
    InvalidTransition,
    Study,
)


@pytest.fixture
def study(db) -> Study:
    result = services.ingest_file(source=us_file("US1_UNCR.dcm"), file_name="a.dcm", route="upload")
    return Study.objects.get(pk=result.study_id)


def test_exam_walks_the_whole_status_path(study: Study) -> None:
    assert study.status == ExamStatus.RECEIVED
    for status in [
        "queued",
        "analysing",
        "ready_for_review",
        "in_review",
        "signed",
        "amended",
        "signed",
    ]:
        study.transition_to(status)
        assert Study.objects.get(pk=study.pk).status == status


def test_invalid_transition_names_both_states(study: Study) -> None:
    with pytest.raises(InvalidTransition) as info:
        study.transition_to("signed")
    assert str(info.value) == (
        f"exam {study.study_instance_uid} cannot go from 'received' to 'signed' (allowed: failed, queued)"
    )
    assert Study.objects.get(pk=study.pk).status == "received"
    with pytest.raises(InvalidTransition, match="unknown exam status 'done'"):
        study.transition_to("done")


def test_failure_needs_and_keeps_a_reason(study: Study) -> None:
    with pytest.raises(InvalidTransition, match="only be marked failed with a reason"):
        study.transition_to("failed")
    study.transition_to("queued")
    study.transition_to("failed", reason="model weights missing")
    assert Study.objects.get(pk=study.pk).failure_reason == "model weights missing"
    study.transition_to("queued")
    assert Study.objects.get(pk=study.pk).failure_reason == ""


def test_transition_uses_the_locked_row_not_a_stale_copy(study: Study) -> None:
    stale = Study.objects.get(pk=study.pk)
    study.transition_to("queued")
    study.transition_to("analysing")
    # ``stale`` still says "received", but the machine checks the row it locked ("analysing").
    stale.transition_to("ready_for_review")
    assert stale.status == "ready_for_review"
    with pytest.raises(InvalidTransition, match="from 'ready_for_review' to 'analysing'"):
        study.transition_to("analysing")


def test_queue_analysis_signal_fires_after_commit(db, django_capture_on_commit_callbacks) -> None:
    received = []

    def receiver(sender, study_id, **kwargs):
        received.append(study_id)

    services.exam_ready_for_analysis.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            results = services.ingest_batch(
                files=[("a.dcm", us_file("US1_UNCR.dcm")), ("b.dcm", us_file("US1_J2KR.dcm"))],
                route="upload",
            )
    finally:
        services.exam_ready_for_analysis.disconnect(receiver)
    assert received == [results[0].study_id]  # one study, queued once for the batch


def test_user_calibration_for_png(db, make_user) -> None:
    user = make_user("obstetrician")
    png = io.BytesIO()
    Image.fromarray(np.zeros((40, 50), dtype=np.uint8)).save(png, format="PNG")
    result = services.ingest_file(source=png.getvalue(), file_name="hc.png", route="upload")
    instance = Instance.objects.get(pk=result.instance_id)
    assert (instance.photometric_interpretation, instance.calibration_source) == (
        "MONOCHROME2",
        "none",
    )
    services.set_user_calibration(
        instance=instance, mm_per_pixel_x=0.15, mm_per_pixel_y=0.15, user=user
    )
    calibration = Calibration.objects.get(instance=instance)
    assert (calibration.source, calibration.mm_per_pixel_x, calibration.entered_by) == (
        "user",
        0.15,
        user,
    )
    assert Instance.objects.get(pk=instance.pk).calibration_source == "user"
    assert AuditEvent.objects.filter(action="update", object_id=str(instance.pk)).exists()
    dicom = Instance.objects.get(
        pk=services.ingest_file(
            source=us_file("OBXXXX1A.dcm"), file_name="o.dcm", route="upload"
        ).instance_id
    )
    with pytest.raises(ValueError, match="carries its own DICOM calibration"):
        services.set_user_calibration(
            instance=dicom, mm_per_pixel_x=0.1, mm_per_pixel_y=0.1, user=user
        )


def test_user_calibration_endpoint(db, client_as) -> None:
    client = client_as("obstetrician")
    jpeg = io.BytesIO()
    Image.fromarray(np.full((30, 40, 3), 90, dtype=np.uint8)).save(jpeg, format="JPEG")
    result = services.ingest_file(source=jpeg.getvalue(), file_name="fp.jpg", route="upload")
    url = f"/exams/instances/{result.sop_instance_uid}/calibration"
    bad = client.post(url, {"mm_per_pixel_x": "abc"})
    assert bad.status_code == 400 and "could not convert" in bad.json()["error"]
    zero = client.post(url, {"mm_per_pixel_x": "0"})
    assert zero.json()["error"] == "mm per pixel 0.0 is outside 0–10"
    ok = client.post(url, {"mm_per_pixel_x": "0.2", "note": "from the depth scale"})
    assert ok.json() == {"source": "user", "mm_per_pixel_x": 0.2, "mm_per_pixel_y": 0.2}
    assert (
        Calibration.objects.get(instance__sop_instance_uid=result.sop_instance_uid).note
        == "from the depth scale"
    )
    assert Instance.objects.get(pk=result.instance_id).converted_from == "jpeg"


def test_16_bit_png_keeps_its_depth(db) -> None:
    import pydicom

    values = (np.arange(40 * 50, dtype=np.uint16).reshape(40, 50) * 30).astype(np.uint16)
    png = io.BytesIO()
    Image.fromarray(values).save(png, format="PNG")
    result = services.ingest_file(source=png.getvalue(), file_name="deep.png", route="upload")
    instance = Instance.objects.get(pk=result.instance_id)
    assert (instance.bits_allocated, instance.photometric_interpretation) == (16, "MONOCHROME2")
    stored = pydicom.dcmread(services.instance_path(instance))
    np.testing.assert_array_equal(stored.pixel_array, values)
