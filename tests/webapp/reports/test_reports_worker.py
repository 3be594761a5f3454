"""End to end with the real Celery worker: signing an exam makes the worker build the reports
and send every DICOM object to Orthanc, with nothing but the sign-off to start it."""

from __future__ import annotations

import time

import pytest

from tests.webapp.reports.conftest import decide_all, sign
from webapp.exams.models import PacsNode
from webapp.reports.models import ReportDocument, ReportGeneration, Writeback, WritebackStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.orthanc]

TIMEOUT_S = 120


def test_sign_off_reaches_the_pacs_through_the_worker(
    celery_worker_process, orthanc, analysed_exam, make_user
) -> None:
    node = PacsNode.objects.create(name="worker-orthanc", dicomweb_url=orthanc.dicomweb_url)
    study = analysed_exam(pacs_node=node)
    doctor = make_user("obstetrician", first_name="Wendy", last_name="Worker")
    decide_all(study, doctor)

    signoff = sign(study, doctor)  # commits; the report task is published on commit

    deadline = time.monotonic() + TIMEOUT_S
    while True:
        generation = ReportGeneration.objects.get(signoff=signoff)
        writebacks = list(Writeback.objects.filter(document__study=study))
        done = (
            generation.status == ReportGeneration.Status.DONE
            and writebacks
            and all(w.status == WritebackStatus.SENT for w in writebacks)
        )
        if done or generation.status == ReportGeneration.Status.FAILED:
            break
        if time.monotonic() > deadline:
            pytest.fail(
                f"reports not sent within {TIMEOUT_S} s: generation {generation.status} "
                f"{generation.error}; write-backs {[(w.status, w.last_error) for w in writebacks]}"
                f"\n{celery_worker_process.log()[-3000:]}"
            )
        time.sleep(0.5)
    assert generation.status == ReportGeneration.Status.DONE, generation.error
    docs = ReportDocument.objects.filter(study=study)
    assert docs.filter(kind="pdf").count() == 1
    dicom = [d for d in docs if d.is_dicom]
    assert len(dicom) == len(writebacks) == 11
    on_pacs = {i["00080018"]["Value"][0] for i in _instances(orthanc, study.study_instance_uid)}
    assert {d.sop_instance_uid for d in dicom} <= on_pacs


def _instances(orthanc, study_uid: str) -> list[dict]:
    from dicomweb_client.api import DICOMwebClient

    return DICOMwebClient(url=orthanc.dicomweb_url).search_for_instances(study_uid)
