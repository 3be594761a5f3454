"""The analysis steps in this process (no worker): rows written, idempotence, progress, retry.

Exams are phantom cines stored through the real ingest service (queue=False: these tests run
the steps themselves). The plane classifier is a seeded untrained network (see conftest), so the
tests assert the mechanics (one row per frame, replacement instead of duplication, model
versions, status machine, JSON shapes), not accuracy.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from webapp.analysis import services
from webapp.analysis.models import (
    AnalysisBatch,
    AnalysisRun,
    BestFrameFinding,
    FramePlaneFinding,
    ModelVersion,
    QualityFinding,
    RunStatus,
)
from webapp.exams.models import ExamStatus

pytestmark = pytest.mark.django_db


def _analyse(study, **kwargs) -> AnalysisRun:
    run = services.request_analysis(study_id=study.pk, trigger="test", dispatch=False, **kwargs)
    assert run is not None
    return services.run_inline(run_id=run.pk)


def test_inline_run_stores_one_plane_finding_per_frame_and_every_view(
    phantom_exam, plane_weights
) -> None:
    study = phantom_exam(seed=11, frames=30, queue=False)
    assert study.status == ExamStatus.RECEIVED

    run = _analyse(study)

    study.refresh_from_db()
    assert run.status == RunStatus.DONE
    assert study.status == ExamStatus.READY_FOR_REVIEW
    assert (run.frames_total, run.frames_done, run.frames_failed) == (30, 30, 0)
    frames = FramePlaneFinding.objects.filter(run=run)
    assert sorted(frames.values_list("frame_number", flat=True)) == list(range(1, 31))
    first = frames.get(frame_number=1)
    assert set(first.probabilities["planes"]) == {
        "fetal_abdomen",
        "fetal_brain",
        "fetal_femur",
        "fetal_thorax",
        "maternal_cervix",
        "other",
    }
    assert abs(sum(first.probabilities["planes"].values()) - 1.0) < 1e-4
    assert first.model_version.name == "planes-classifier"
    assert first.model_version.version == "test-untrained-seed0"
    best = dict(BestFrameFinding.objects.filter(run=run).values_list("view_key", "flag"))
    # Every view of every protocol is searched, so completeness can be asked for any protocol.
    assert set(best) == set(services.views_to_search("biometry"))
    assert len(best) == 13
    assert best["kidneys"] == "absent"  # no model recognises it yet
    # Quality criteria exist for every biometry view, judged or explicitly not assessable.
    assert QualityFinding.objects.filter(run=run, view_key="femur_fl").count() == 4
    assert QualityFinding.objects.filter(run=run, view_key="head_trans_thalamic").count() == 6
    names = set(run.model_versions.values_list("name", flat=True))
    assert "planes-classifier" in names
    # The shipped structure model (phantom-trained) measures AC / FL: nothing is unavailable.
    assert "structures-unet" in names
    assert "abdomen-segmentation" not in run.notes["models_unavailable"]


def test_rerunning_a_batch_replaces_its_findings_instead_of_duplicating(
    phantom_exam, plane_weights
) -> None:
    study = phantom_exam(seed=12, frames=30, queue=False)
    run = services.request_analysis(study_id=study.pk, dispatch=False)
    services.start_run(run_id=run.pk, dispatch=False)
    batch = AnalysisBatch.objects.filter(run=run).order_by("first_frame").first()
    assert services.analyse_batch(batch_id=batch.pk, dispatch=False) == "done"
    before = list(
        FramePlaneFinding.objects.filter(run=run).values_list("frame_number", "probabilities")
    )
    # A redelivered message for a finished batch is a no-op; a forced repeat replaces the rows.
    assert services.analyse_batch(batch_id=batch.pk, dispatch=False) == "already done"
    AnalysisBatch.objects.filter(pk=batch.pk).update(status=AnalysisBatch.Status.PENDING)
    assert services.analyse_batch(batch_id=batch.pk, dispatch=False) == "done"
    after = list(
        FramePlaneFinding.objects.filter(run=run).values_list("frame_number", "probabilities")
    )
    assert after == before
    assert len(after) == batch.size
    run.refresh_from_db()
    assert run.frames_done == batch.size
    assert AnalysisBatch.objects.get(pk=batch.pk).attempts == 2


def test_reanalysis_keeps_the_earlier_run_and_its_findings(phantom_exam, plane_weights) -> None:
    study = phantom_exam(seed=13, frames=30, queue=False)
    first = _analyse(study)
    second = _analyse(study, force=True)
    assert first.pk != second.pk
    assert FramePlaneFinding.objects.filter(run=first).count() == 30
    assert FramePlaneFinding.objects.filter(run=second).count() == 30
    # The same weights are one ModelVersion row, shared by both runs.
    assert ModelVersion.objects.filter(name="planes-classifier").count() == 1
    study.refresh_from_db()
    assert study.status == ExamStatus.READY_FOR_REVIEW


def test_progress_json_and_retry_of_a_failed_exam(phantom_exam, plane_weights, client_as) -> None:
    study = phantom_exam(seed=14, frames=30, queue=False)
    run = services.request_analysis(study_id=study.pk, dispatch=False)
    services.start_run(run_id=run.pk, dispatch=False)
    batch = AnalysisBatch.objects.filter(run=run).order_by("first_frame").first()
    services.analyse_batch(batch_id=batch.pk, dispatch=False)
    client = client_as("obstetrician")

    data = client.get(reverse("analysis:progress", args=[study.pk])).json()
    assert data["status"] == "analysing"
    assert data["run"]["frames_done"] == batch.size
    assert data["run"]["frames_total"] == 30
    assert data["run"]["stage"] == "classifying"
    assert data["can_retry"] is False

    services.fail_run(run_id=run.pk, reason="the worker ran out of memory")
    data = client.get(reverse("analysis:progress", args=[study.pk])).json()
    assert data["status"] == "failed"
    assert data["failure_reason"] == "analysis failed: the worker ran out of memory"
    assert data["can_retry"] is True

    response = client.post(
        reverse("analysis:retry", args=[study.pk]), HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert body["run"]["id"] == body["run_id"] != run.pk
    assert AnalysisRun.objects.get(pk=run.pk).status == RunStatus.FAILED  # kept
    # Retrying an exam that is not failed is refused with a reason.
    again = client.post(reverse("analysis:retry", args=[study.pk]), HTTP_ACCEPT="application/json")
    assert again.status_code == 409
    assert "only a failed exam can be retried" in again.json()["error"]


def test_progress_of_many_exams_and_access_rules(phantom_exam, plane_weights, client_as) -> None:
    study = phantom_exam(seed=15, frames=30, queue=False)
    _analyse(study)
    client = client_as("supervisor")
    many = client.get(reverse("analysis:progress_many"), {"ids": f"{study.pk},999999"}).json()
    assert list(many["exams"]) == [str(study.pk)]
    assert many["exams"][str(study.pk)]["status"] == "ready_for_review"
    bad = client.get(reverse("analysis:progress_many"), {"ids": "1,x"})
    assert bad.status_code == 400
    assert bad.json()["error"] == "ids must be whole numbers separated by commas"
    # A supervisor may read but not retry; a sonographer sees only their own exams.
    denied = client.post(reverse("analysis:retry", args=[study.pk]))
    assert denied.status_code == 403
    other = client_as("sonographer")
    assert other.get(reverse("analysis:progress", args=[study.pk])).status_code == 404
    client.logout()
    assert client.get(reverse("analysis:progress", args=[study.pk])).status_code == 401


def test_completeness_lists_found_missing_and_views_no_model_recognises(
    phantom_exam, plane_weights, client_as
) -> None:
    study = phantom_exam(seed=16, frames=30, queue=False)
    _analyse(study)
    client = client_as("obstetrician")
    bio = client.get(reverse("analysis:completeness", args=[study.pk])).json()
    assert bio["protocol"] == "biometry"
    assert bio["required"] == 3
    assert [v["view_key"] for v in bio["views"]] == [
        "head_trans_thalamic",
        "abdomen_ac",
        "femur_fl",
    ]
    flags = dict(
        BestFrameFinding.objects.filter(run_id=bio["run_id"]).values_list("view_key", "flag")
    )
    expected = {
        v: ("missing" if flags[v] == "absent" else flags[v])
        for v in ("head_trans_thalamic", "abdomen_ac", "femur_fl")
    }
    assert {v["view_key"]: v["status"] for v in bio["views"]} == expected
    mid = client.get(
        reverse("analysis:completeness", args=[study.pk]), {"protocol": "mid_trimester"}
    ).json()
    assert mid["required"] == 13
    assert set(mid["needs_person"]) == {
        "face_lips",
        "face_profile",
        "heart_lvot",
        "heart_rvot",
        "heart_3vt",
        "kidneys",
        "spine_sagittal",
    }
    assert mid["complete"] is False
    bad = client.get(reverse("analysis:completeness", args=[study.pk]), {"protocol": "nope"})
    assert bad.status_code == 400
    assert "unknown protocol 'nope'" in bad.json()["error"]


def test_analyse_exam_command_inline_prints_a_progress_bar(phantom_exam, plane_weights) -> None:
    study = phantom_exam(seed=17, frames=30, queue=False)
    out = StringIO()
    call_command("analyse_exam", str(study.pk), "--inline", stdout=out)
    text = out.getvalue()
    assert "[" + "#" * 30 + "]    30/30 frames" in text
    assert f"exam {study.pk}: ready for review in" in text
    assert "planes found" in text
    run = AnalysisRun.objects.get(study=study)
    assert run.trigger == "command"
    assert json.dumps(run.notes)  # JSON-serialisable notes


@pytest.fixture
def brain_biased_weights(tmp_path, monkeypatch):
    """A PlaneNet whose output ignores the image: every frame 'Fetal brain, trans-thalamic'
    (p ≈ 0.9999), so the head frame search and the head model run on every candidate."""
    import torch

    from inference.planes import taxonomy
    from inference.planes.model import PlaneNet, save_weights

    net = PlaneNet().eval()
    with torch.no_grad():
        for head, keys, key in (
            (net.plane_head, taxonomy.PLANE_KEYS, "fetal_brain"),
            (net.brain_head, taxonomy.BRAIN_PLANE_KEYS, "trans_thalamic"),
        ):
            head.weight.zero_()
            head.bias.fill_(0.0)
            head.bias[keys.index(key)] = 12.0
    path = tmp_path / "planes_brain.pt"
    save_weights(net, path, {"width": 24, "version": "test-always-brain"})
    monkeypatch.setenv("SONOREVIEW_PLANES_WEIGHTS", str(path))
    return path


def test_finalize_stores_head_masks_measurements_and_calibration_region(
    tmp_path, brain_biased_weights
) -> None:
    from inference import pipeline
    from inference.phantom import make_frame
    from inference.phantom.dicom import ExamIds, write_us_image
    from webapp.analysis.models import DerivedFinding, MeasurementFinding, SegmentationFinding
    from webapp.analysis.services import mask_from_png
    from webapp.exams.models import Instance, Study, UltrasoundRegion
    from webapp.exams.services import ingest_file

    if not pipeline.DEFAULT_HEAD_WEIGHTS.is_file():
        pytest.skip(f"the shipped head weights are not at {pipeline.DEFAULT_HEAD_WEIGHTS}")
    ids = ExamIds.for_exam(41, 1, "three head images")
    ids = type(ids)(**{**ids.__dict__, "study_uid": "2.25.4141414141"})
    frames = {}
    for i in range(3):
        f = make_frame("fetal_brain", seed=40 + i, brain_plane="trans_thalamic")
        path = write_us_image(
            tmp_path / f"head{i}.dcm",
            f.image,
            fov=f.fov,
            pixel_mm=f.pixel_mm,
            ids=ids,
            series_uid="2.25.4141414142",
            sop_uid=f"2.25.41414141430{i}",
            instance_number=i + 1,
        )
        result = ingest_file(source=path, file_name=path.name, route="upload", queue=False)
        assert result.outcome == "stored", result.reason
        frames[result.sop_instance_uid] = f
    study = Study.objects.get(study_instance_uid="2.25.4141414141")
    run = _analyse(study)
    assert run.status == RunStatus.DONE
    assert run.frames_total == 3
    best = BestFrameFinding.objects.get(run=run, view_key="head_trans_thalamic")
    assert best.instance is not None and best.frame_number == 1
    assert best.flag in ("optimal", "sub_optimal")
    assert len(best.evidence["candidates"]) == 3
    assert "head_confidence" in best.evidence
    truth = frames[best.instance.sop_instance_uid]
    measurements = {m.kind: m for m in MeasurementFinding.objects.filter(run=run)}
    if not run.notes["head"]["found"]:
        # The head checkpoint found no head on these phantom frames: said so, nothing measured.
        assert run.notes["head"]["reason"]
        assert best.flag == "sub_optimal"
        assert measurements == {}
        assert not DerivedFinding.objects.filter(run=run).exists()
        return
    assert set(measurements) == {"HC", "BPD", "OFD", "CI"}
    hc = measurements["HC"]
    region = UltrasoundRegion.objects.get(instance=best.instance)
    assert hc.calibration_region_id == region.pk
    assert hc.calibration_source == "us_regions"
    assert hc.mm_per_pixel_x == pytest.approx(truth.pixel_mm, rel=1e-6)
    assert hc.value_mm == pytest.approx(hc.value_px * truth.pixel_mm, rel=1e-4)
    assert hc.geometry_px["type"] == "ellipse"
    assert hc.model_version.name == "head-unet"
    assert measurements["BPD"].convention == "outer-to-outer"
    seg = SegmentationFinding.objects.get(run=run, structure="skull")
    mask = mask_from_png(seg.mask_png)
    assert mask.shape == (seg.rows, seg.columns) == truth.image.shape
    assert int(mask.sum()) == seg.area_px > 0
    ga = DerivedFinding.objects.get(run=run, formula_key="ga.hadlock1984.hc")
    assert ga.unit == "d"
    assert ga.inputs["hc_mm"] == pytest.approx(hc.value_mm, abs=1e-3)
    assert ga.formula["dicom_code"] is not None or ga.formula["code_note"]
    assert Instance.objects.filter(series__study=study).count() == 3


@pytest.mark.django_db(transaction=True)
def test_demo_mode_without_a_broker_analyses_in_process_after_ingest(
    phantom_exam, plane_weights
) -> None:
    from webapp.celery import app
    from webapp.exams.models import Study

    app.conf.task_always_eager = True
    try:
        study = phantom_exam(seed=18, frames=30)  # queue=True: the ingest hook fires on commit
    finally:
        app.conf.task_always_eager = False
    study = Study.objects.get(pk=study.pk)
    assert study.status == ExamStatus.READY_FOR_REVIEW
    run = AnalysisRun.objects.get(study=study)
    assert (run.status, run.trigger, run.frames_done) == (RunStatus.DONE, "ingest", 30)


def test_a_deactivated_model_version_is_not_used_and_the_exam_says_why(
    phantom_exam, plane_weights
) -> None:
    study = phantom_exam(seed=19, frames=30, queue=False)
    first = _analyse(study)
    version = first.model_versions.get(name="planes-classifier")
    version.is_active = False
    version.save()
    run = services.request_analysis(study_id=study.pk, dispatch=False, force=True)
    with pytest.raises(RuntimeError, match="is deactivated by an administrator"):
        services.run_inline(run_id=run.pk)
    run.refresh_from_db()
    study.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert study.status == ExamStatus.FAILED
    assert "ModelDeactivated: model planes-classifier test-untrained-seed0" in study.failure_reason
    assert not FramePlaneFinding.objects.filter(run=run).exists()


def test_sweep_requeues_received_queued_and_stalled_exams_once_each(
    phantom_exam, plane_weights, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from webapp.celery import app
    from webapp.exams.models import Study

    queue = f"analysis-sweep-test-{timezone.now().timestamp()}"
    monkeypatch.setenv("SONOREVIEW_ANALYSIS_QUEUE", queue)
    long_ago = timezone.now() - timedelta(hours=1)
    received = phantom_exam(seed=20, frames=30, queue=False)  # never queued: no receiver ran
    Study.objects.filter(pk=received.pk).update(status_changed_at=long_ago)
    queued_study = phantom_exam(seed=21, frames=30, queue=False)
    queued = services.request_analysis(study_id=queued_study.pk, dispatch=False)
    AnalysisRun.objects.filter(pk=queued.pk).update(queued_at=long_ago, updated_at=long_ago)
    stalled_study = phantom_exam(seed=22, frames=30, queue=False)
    stalled = services.request_analysis(study_id=stalled_study.pk, dispatch=False)
    services.start_run(run_id=stalled.pk, dispatch=False)  # 4 batches, none done
    AnalysisRun.objects.filter(pk=stalled.pk).update(updated_at=long_ago)
    fresh_study = phantom_exam(seed=23, frames=30, queue=False)
    services.request_analysis(study_id=fresh_study.pk, dispatch=False)  # queued just now

    try:
        with django_capture_on_commit_callbacks(execute=True):
            actions = services.sweep_stuck(older_than=timedelta(minutes=10))
        new_run = AnalysisRun.objects.get(study=received)
        assert sorted(actions) == sorted(
            [
                f"exam {received.pk}: queued run {new_run.pk}",
                f"run {queued.pk}: start re-published",
                f"run {stalled.pk}: 4 pending batches re-published",
            ]
        )
        with app.connection_for_write() as connection:
            _, waiting, _ = connection.default_channel.queue_declare(queue=queue, passive=True)
        assert waiting == 1 + 1 + 4  # start (new run), start (queued run), 4 batches
        # A second sweep right away re-publishes nothing: what it re-published is touched, so a
        # long backlog never collects duplicate messages (at most one per period).
        assert services.sweep_stuck(older_than=timedelta(minutes=10)) == []
        # A start message delivered twice splits the exam once.
        services.start_run(run_id=queued.pk, dispatch=False)
        assert services.start_run(run_id=queued.pk, dispatch=False) == 0
        assert AnalysisBatch.objects.filter(run=queued).count() == 4
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(queue)


def test_shipped_models_store_ac_apad_tad_and_fl_with_masks_and_the_validation_mark(
    tmp_path, monkeypatch
) -> None:
    """One abdomen and one femur phantom image analysed with the shipped plane classifier and
    structure model: AC / APAD / TAD and FL stored in mm (calibration from the DICOM regions),
    their masks, the structure model's version, and "not validated on real images"."""
    from inference.phantom.dicom import ExamIds, phantom_uid, write_us_image
    from inference.phantom.generator import make_frame
    from webapp.analysis import runtime
    from webapp.analysis.models import MeasurementFinding, SegmentationFinding
    from webapp.exams import services as exams

    monkeypatch.delenv("SONOREVIEW_PLANES_WEIGHTS", raising=False)
    monkeypatch.delenv("SONOREVIEW_STRUCTURES_WEIGHTS", raising=False)
    missing = [str(p) for p in runtime.weights_paths().values() if not p.exists()]
    if missing:
        pytest.skip(f"the shipped weights are not there: {', '.join(missing)}")
    frames = {
        "abdomen_ac": make_frame("fetal_abdomen", seed=7301, fill=0.42, shape=(360, 480)),
        "femur_fl": make_frame(
            "fetal_femur", seed=7302, angle_deg=12.0, fill=0.45, epiphysis=False, shape=(360, 480)
        ),
    }
    ids = ExamIds.for_exam(7300, 1, "analysis AC and FL")
    study_id = None
    for i, f in enumerate(frames.values(), start=1):
        path = write_us_image(
            tmp_path / f"IMG{i}.dcm", f.image, fov=f.fov, pixel_mm=f.pixel_mm, ids=ids,
            series_uid=phantom_uid(7300, 1, "series", 1), sop_uid=phantom_uid(7300, 1, "sop", i),
            instance_number=i,
        )  # fmt: skip
        result = exams.ingest_file(source=path, file_name=path.name, route="upload", queue=False)
        assert result.ok, result.reason
        study_id = result.study_id
    run = services.request_analysis(study_id=study_id, trigger="test", dispatch=False)
    run = services.run_inline(run_id=run.pk)
    assert run.status == RunStatus.DONE, run.error
    rows = {m.kind: m for m in MeasurementFinding.objects.filter(run=run)}
    assert {"AC", "APAD", "TAD", "FL"} <= set(rows)
    assert rows["AC"].value_mm == pytest.approx(
        frames["abdomen_ac"].measurements_mm["AC"], rel=0.03
    )
    assert rows["FL"].value_mm == pytest.approx(frames["femur_fl"].measurements_mm["FL"], rel=0.03)
    for kind in ("AC", "APAD", "TAD", "FL"):
        assert rows[kind].model_version.name == "structures-unet"
        assert "not validated on real images" in rows[kind].method
        assert rows[kind].view_key == ("femur_fl" if kind == "FL" else "abdomen_ac")
    structures = set(
        SegmentationFinding.objects.filter(run=run).values_list("structure", flat=True)
    )
    assert {"abdomen", "stomach", "spine", "femur"} <= structures
    stomach = QualityFinding.objects.get(run=run, criterion_key="abdomen.stomach_visible")
    assert stomach.verdict == "met" and stomach.model_version.name == "structures-unet"
    assert run.notes["structures"]["abdomen_ac"]["validation"] == "not validated on real images"
    assert "abdomen-segmentation" not in run.notes["models_unavailable"]
