"""Reports of an exam analysed by the REAL pipeline (shipped weights), not of stored findings.

A phantom biometry exam is ingested through the exams ingest service and analysed in-process by
the same services the Celery tasks call; an obstetrician accepts every AI finding and signs. Every
DICOM object built from that exam passes dciodvfy, and the TID 5000 SR read back holds every
measurement the pipeline made — HC, BPD, OFD from the head model, AC and FL from the
phantom-trained structure model — with their LOINC codes in mm, AC and FL near the phantom's truth.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from inference.reporting import readback, validate
from tests.webapp.reports.conftest import decide_all, sign
from webapp.reports import services
from webapp.reports.models import ReportDocument, ReportGeneration, ReportKind

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("dciodvfy", "dsrdump", "dcmdump")),
        reason="needs dcmtk and dicom3tools (scripts/ensure-services.sh installs them)",
    ),
]

PLANES = (("fetal_brain", "trans_thalamic"), ("fetal_abdomen", None), ("fetal_femur", None))
LOINC = {"HC": "11984-2", "BPD": "11820-8", "OFD": "11851-3", "AC": "11979-2", "FL": "11963-6"}


@pytest.fixture(autouse=True)
def shipped_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped models, whatever an earlier session-scoped fixture put in the environment
    (tests/webapp/analysis swaps in an untrained plane network for the whole session)."""
    monkeypatch.delenv("SONOREVIEW_PLANES_WEIGHTS", raising=False)
    monkeypatch.delenv("SONOREVIEW_HEAD_WEIGHTS", raising=False)
    monkeypatch.delenv("SONOREVIEW_STRUCTURES_WEIGHTS", raising=False)


def _pipeline_exam(tmp_path: Path):
    from inference.phantom.dicom import ExamIds, phantom_uid, write_us_image
    from inference.phantom.generator import make_frame
    from webapp.analysis import runtime
    from webapp.analysis import services as analysis
    from webapp.exams import services as exams
    from webapp.exams.models import Study

    missing = [str(p) for p in runtime.weights_paths().values() if not p.exists()]
    if missing:
        pytest.skip(f"the pipeline's weights are not there: {', '.join(missing)}")
    ids = ExamIds.for_exam(9292, 1, "report pipeline biometry")
    series_uid = phantom_uid(9292, 1, "series", 1)
    study_id, truth = None, {}
    for i, (plane, sub) in enumerate(PLANES, start=1):
        seed = 9090 + i
        f = make_frame(plane, brain_plane=sub, seed=seed, shape=(360, 480))
        while plane == "fetal_femur" and not all(f.criteria.values()):
            seed += 100  # a standard femur plane (both ends visible, < 45°): FL is defined
            f = make_frame(plane, brain_plane=sub, seed=seed, shape=(360, 480))
        truth.update({k: v for k, v in f.measurements_mm.items() if k in ("AC", "FL")})
        path = write_us_image(
            tmp_path / f"IMG{i:03d}.dcm", f.image, fov=f.fov, pixel_mm=f.pixel_mm, ids=ids,
            series_uid=series_uid, sop_uid=phantom_uid(9292, 1, "sop", i), instance_number=i,
        )  # fmt: skip
        result = exams.ingest_file(source=path, file_name=path.name, route="upload", queue=False)
        assert result.ok, result.reason
        study_id = result.study_id
    run = analysis.request_analysis(study_id=study_id, trigger="command", dispatch=False)
    assert run is not None
    run = analysis.run_inline(run_id=run.pk)
    assert run.status == "done", run.error
    return Study.objects.get(pk=study_id), truth


def test_reports_of_a_pipeline_analysed_exam_validate_and_carry_its_measurements(
    tmp_path, make_user, django_capture_on_commit_callbacks
) -> None:
    study, truth = _pipeline_exam(tmp_path)
    doctor = make_user("obstetrician", first_name="Paula", last_name="Pipeline")
    decide_all(study, doctor)
    with django_capture_on_commit_callbacks(execute=False):
        signoff = sign(study, doctor)
    generation = ReportGeneration.objects.get(signoff=signoff)

    docs = services.generate_reports(generation_id=generation.pk)

    generation.refresh_from_db()
    assert generation.status == ReportGeneration.Status.DONE
    kinds = {d.kind for d in docs}
    assert {"pdf", "sr5000", "sr1500", "seg"} <= kinds
    for doc in docs:
        if doc.is_dicom:
            verdict = validate.dciodvfy(Path(doc.file.path))
            assert verdict.errors == [], f"{doc}: {verdict.output}"

    final = signoff.summary["final_values_mm"]
    assert set(LOINC) <= set(final), final
    sr = ReportDocument.objects.get(study=study, kind=ReportKind.SR5000, version=1)
    assert validate.dsrdump(Path(sr.file.path)).ok
    nums = readback.numeric_items(pydicom.dcmread(sr.file.path))
    for kind, loinc in LOINC.items():
        (item,) = [n for n in nums if n.code[:2] == ("LN", loinc)]
        assert item.value == pytest.approx(final[kind], abs=0.05)  # signed at 0.1 mm
        assert item.unit == ("UCUM", "mm")
    # The pipeline measured the phantom head (HC 100–400 mm covers any plausible phantom fetus).
    assert 100.0 < final["HC"] < 400.0
    # AC and FL of the phantom-trained model, against the generator's truth for these frames
    assert final["AC"] == pytest.approx(truth["AC"], rel=0.03)
    assert final["FL"] == pytest.approx(truth["FL"], rel=0.05)
