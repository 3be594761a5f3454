"""Faults with real processes: a worker SIGKILLed mid-exam, a model raising on one frame, the
broker down when an exam arrives. Nothing may be lost or duplicated.

Real Redis, real PostgreSQL, real ``celery worker`` processes (``analysis_workers`` in conftest:
their own queue, a 6 s visibility timeout), phantom DICOM cines stored through the real ingest
service, which queues the analysis after its transaction commits — as in production.
"""

from __future__ import annotations

import time
from io import StringIO

import pytest
from django.core.management import call_command

from webapp.analysis.models import (
    AnalysisBatch,
    AnalysisRun,
    BestFrameFinding,
    DerivedFinding,
    FramePlaneFinding,
    MeasurementFinding,
    QualityFinding,
    RunStatus,
    SegmentationFinding,
)
from webapp.exams.models import ExamStatus, Study

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

FRAMES = 32  # 4 batches of 8


def findings_of(run: AnalysisRun) -> dict[str, list[tuple]]:
    """Every finding of a run, without ids: two runs on the same bytes must compare equal."""
    return {
        "frames": list(
            FramePlaneFinding.objects.filter(run=run)
            .order_by("instance_id", "frame_number")
            .values_list(
                "instance_id",
                "frame_number",
                "probabilities",
                "top_plane",
                "top_view",
                "failed",
                "failure_reason",
                "model_version_id",
            )
        ),
        "best": list(
            BestFrameFinding.objects.filter(run=run)
            .order_by("view_key")
            .values_list("view_key", "instance_id", "frame_number", "score", "flag", "evidence")
        ),
        "measurements": list(
            MeasurementFinding.objects.filter(run=run)
            .order_by("kind")
            .values_list("kind", "frame_number", "geometry_px", "value_px", "value_mm")
        ),
        "segmentations": list(
            SegmentationFinding.objects.filter(run=run)
            .order_by("structure")
            .values_list("structure", "frame_number", "area_px")
        ),
        "quality": list(
            QualityFinding.objects.filter(run=run)
            .order_by("view_key", "criterion_key")
            .values_list("view_key", "criterion_key", "verdict", "evidence")
        ),
        "derived": list(
            DerivedFinding.objects.filter(run=run)
            .order_by("formula_key")
            .values_list("formula_key", "value", "unit")
        ),
    }


def run_of(study: Study) -> AnalysisRun | None:
    return AnalysisRun.objects.filter(study=study).order_by("-pk").first()


def test_worker_killed_mid_exam_redelivers_the_batch_and_findings_equal_an_undisturbed_run(
    analysis_workers, phantom_exam, wait_for
) -> None:
    slow = analysis_workers(SONOREVIEW_ANALYSIS_SLOW_BATCH="3")
    study = phantom_exam(seed=31, frames=FRAMES)  # ingest queues the analysis on commit

    def some_batches_done() -> bool:
        run = run_of(study)
        return run is not None and 1 <= run.batches_done < run.batches_total

    wait_for(some_batches_done, timeout=90, what="the first batch", log=slow.log)
    # The worker is inside a batch (sleeping in it), with that batch's message unacknowledged.
    wait_for(
        lambda: AnalysisBatch.objects.filter(
            run=run_of(study), status="pending", attempts=1
        ).exists(),
        timeout=30,
        what="a batch in progress",
        log=slow.log,
    )
    slow.kill()
    killed_at = time.monotonic()
    run = run_of(study)
    assert run.status == RunStatus.ANALYSING
    in_flight = AnalysisBatch.objects.get(run=run, status="pending", attempts=1)
    assert run.batches_done < run.batches_total == FRAMES // 8

    # A new worker restores the dead worker's unacknowledged message once the visibility timeout
    # has passed; the exam completes.
    worker = analysis_workers()
    wait_for(
        lambda: Study.objects.get(pk=study.pk).status == ExamStatus.READY_FOR_REVIEW,
        timeout=120,
        what="the exam to be ready for review after the kill",
        log=worker.log,
    )
    assert time.monotonic() - killed_at >= 1.0
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    assert (run.frames_done, run.frames_total, run.batches_done) == (FRAMES, FRAMES, 4)
    in_flight.refresh_from_db()
    assert in_flight.status == "done"
    assert in_flight.attempts >= 2  # it ran again after the kill
    assert FramePlaneFinding.objects.filter(run=run).count() == FRAMES  # no duplicates
    disturbed = findings_of(run)

    # The same exam analysed again, undisturbed, by the same kind of worker.
    call_command("analyse_exam", str(study.pk), "--force", "--timeout", "120", stdout=StringIO())
    again = run_of(study)
    assert again.pk != run.pk
    assert again.status == RunStatus.DONE
    assert findings_of(again) == disturbed


def test_a_model_failing_on_one_frame_marks_that_frame_and_the_exam_completes(
    analysis_workers, phantom_exam, fault_exam, wait_for
) -> None:
    seed, bad_frame = fault_exam["seed"], fault_exam["bad_frame"]
    assert fault_exam["frames"] == FRAMES
    worker = analysis_workers()  # every module worker raises on that exam's frame 13
    study = phantom_exam(seed=seed, frames=FRAMES)
    wait_for(
        lambda: Study.objects.get(pk=study.pk).status == ExamStatus.READY_FOR_REVIEW,
        timeout=120,
        what="the exam with a failing frame to complete",
        log=worker.log,
    )
    run = run_of(study)
    assert run.status == RunStatus.DONE
    assert run.frames_failed == 1
    failed = FramePlaneFinding.objects.filter(run=run, failed=True)
    assert list(failed.values_list("frame_number", "failure_reason")) == [
        (
            bad_frame,
            f"plane classifier failed: FrameFault: injected model fault on frame {bad_frame}",
        )
    ]
    assert failed.get().probabilities == {}
    ok = FramePlaneFinding.objects.filter(run=run, failed=False)
    assert ok.count() == FRAMES - 1
    assert all(p["planes"] for p in ok.values_list("probabilities", flat=True))
    # The failed frame is never proposed as a best frame.
    assert not BestFrameFinding.objects.filter(run=run, frame_number=bad_frame).exists()


def test_broker_down_at_ingest_keeps_the_exam_queued_and_the_sweep_analyses_it(
    analysis_workers, phantom_exam, wait_for, closed_port
) -> None:
    from webapp.celery import app

    worker = analysis_workers()
    app.conf.broker_write_url = f"redis://127.0.0.1:{closed_port}/0"
    try:
        study = phantom_exam(seed=33, frames=FRAMES)  # ingest commits; publishing fails
    finally:
        app.conf.broker_write_url = None
    study.refresh_from_db()
    assert study.status == ExamStatus.QUEUED
    run = run_of(study)
    assert run.status == RunStatus.QUEUED
    assert run.publish_attempts == 1
    time.sleep(3)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED  # no message reached any worker

    out = StringIO()
    call_command("sweep_stuck_exams", "--older-than-minutes", "0", stdout=out)
    assert f"run {run.pk}: start re-published" in out.getvalue()
    wait_for(
        lambda: Study.objects.get(pk=study.pk).status == ExamStatus.READY_FOR_REVIEW,
        timeout=120,
        what="the swept exam to be analysed",
        log=worker.log,
    )
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    assert FramePlaneFinding.objects.filter(run=run).count() == FRAMES
    assert AnalysisRun.objects.filter(study=study).count() == 1  # re-published, not duplicated
