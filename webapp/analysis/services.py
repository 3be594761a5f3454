"""Analysis of exams: queueing, frame batches, finalising findings, progress, completeness, sweep.

Flow (each step a Celery task on the ``inference`` queue calling one function here):

``request_analysis`` (after ingest commits, on retry, from the command line) creates an
``AnalysisRun`` in ``queued``, moves the exam to ``queued`` and publishes ``start_analysis`` after
commit. If the broker is down the run stays ``queued`` and ``sweep_stuck`` publishes it later.
``start_run`` splits every instance into frame batches (``AnalysisBatch`` rows) and publishes one
``analyse_batch`` per batch; the exam goes to ``analysing``. ``analyse_batch`` classifies its frames
and replaces its own ``FramePlaneFinding`` rows in one transaction that also marks the batch done;
the batch that completes the run publishes ``finalize_run``. ``finalize_run`` picks the best frame
per view, measures, judges quality and derives GA / EFW, replacing the run's findings in one
transaction, and moves the exam to ``ready_for_review``. A task redelivered after a crash repeats
its step and replaces what it wrote: nothing is lost or duplicated.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from inference import pipeline
from inference.planes import taxonomy
from webapp.analysis import runtime
from webapp.analysis.models import (
    ACTIVE_RUN_STATUSES,
    AnalysisBatch,
    AnalysisRun,
    BestFrameFinding,
    DerivedFinding,
    FramePlaneFinding,
    MeasurementFinding,
    QualityFinding,
    RunStage,
    RunStatus,
    SegmentationFinding,
)
from webapp.exams.models import ExamStatus, Instance, InvalidTransition, Study

log = logging.getLogger(__name__)

#: Frames per ``analyse_batch`` task: small enough that one long cine does not hold a worker for
#: long (and a redelivered batch repeats little work), large enough to batch the network call.
BATCH_FRAMES = 48


def batch_frames() -> int:
    """Frames per batch: ``SONOREVIEW_ANALYSIS_BATCH_FRAMES`` or 48."""
    try:
        return max(1, int(os.environ.get("SONOREVIEW_ANALYSIS_BATCH_FRAMES") or BATCH_FRAMES))
    except ValueError:
        return BATCH_FRAMES


DEFAULT_PROTOCOL = "biometry"
#: Exam states from which new images or a retry may start a new analysis.
_STARTABLE = {
    ExamStatus.RECEIVED,
    ExamStatus.QUEUED,
    ExamStatus.ANALYSING,
    ExamStatus.READY_FOR_REVIEW,
    ExamStatus.FAILED,
}


class AnalysisRefused(Exception):
    """An analysis request that cannot be honoured; the message says why (shown to people)."""


# --------------------------------------------------------------------------------------------
# Queueing
# --------------------------------------------------------------------------------------------


def analysis_queue() -> str:
    """The Celery queue for analysis tasks (``inference``; tests may isolate their own)."""
    return os.environ.get("SONOREVIEW_ANALYSIS_QUEUE") or "inference"


def publish(task_name: str, *args: Any) -> bool:
    """Send a task to the analysis queue; False (logged) when the broker does not answer.

    Never raises for a broker outage: the rows already say what still has to happen, and
    ``sweep_stuck`` re-publishes it. With ``task_always_eager`` (the demo without a broker) the
    task runs in this process instead.
    """
    from webapp.celery import app

    if app.conf.task_always_eager:
        # Demo without a broker: run the step here and now (its own follow-ups likewise).
        from webapp.analysis import tasks  # registers the tasks in this process

        try:
            getattr(tasks, task_name.rsplit(".", 1)[1]).apply(args=list(args), throw=True)
        except Exception as exc:  # the task's on_failure has recorded the failure on the run
            log.warning("%s%s failed in-process: %s: %s", task_name, args, type(exc).__name__, exc)
        return True
    try:
        # A fresh connection per message (cheap on Redis): the broker URL is read at each call
        # and a connection broken by a broker restart is never reused.
        with app.connection_for_write() as connection:
            app.send_task(
                task_name,
                args=list(args),
                queue=analysis_queue(),
                connection=connection,
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
            )
        return True
    except Exception as exc:  # kombu OperationalError, redis ConnectionError, socket errors…
        log.warning("could not publish %s%s: %s: %s", task_name, args, type(exc).__name__, exc)
        return False


def _publish_start(run_id: int) -> None:
    if not publish("webapp.analysis.tasks.start_analysis", run_id):
        AnalysisRun.objects.filter(pk=run_id).update(publish_attempts=F("publish_attempts") + 1)


def request_analysis(
    *,
    study_id: int,
    trigger: str = "ingest",
    protocol: str = DEFAULT_PROTOCOL,
    force: bool = False,
    dispatch: bool = True,
) -> AnalysisRun | None:
    """Queue an analysis of the exam; returns the queued run (None when nothing was needed).

    Side effects: in one transaction, creates an ``AnalysisRun`` (queued) and moves the exam to
    ``queued``; publishes ``start_analysis`` after commit (a broker outage leaves the run queued
    for the sweep). A run still waiting in the queue is reused (it will see the new images). A
    signed or in-review exam is not re-analysed automatically (AnalysisRefused when ``force``).
    ``force``: a new run even when one is waiting (re-analysis with newer models).
    ``dispatch=False``: publish nothing (the caller runs the steps in-process).
    """
    if protocol not in taxonomy.PROTOCOLS:
        raise AnalysisRefused(
            f"unknown protocol {protocol!r}; expected one of {', '.join(taxonomy.PROTOCOLS)}"
        )
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study_id)
        if study.status not in _STARTABLE:
            if force:
                raise AnalysisRefused(
                    f"exam {study.study_instance_uid} is {study.get_status_display().lower()}; "
                    "it cannot be analysed again"
                )
            log.info("exam %s is %s: not re-analysed", study.pk, study.status)
            return None
        waiting = study.analysis_runs.filter(status=RunStatus.QUEUED).order_by("-pk").first()
        if waiting is not None and not force:
            return waiting
        run = AnalysisRun.objects.create(study=study, trigger=trigger, protocol=protocol)
        if study.status != ExamStatus.QUEUED:
            study.transition_to(ExamStatus.QUEUED)
        if dispatch:
            transaction.on_commit(lambda: _publish_start(run.pk))
    return run


def on_exam_ready(sender: Any, study_id: int, **_: Any) -> None:
    """Receiver of ``exams.services.exam_ready_for_analysis`` (after an ingest commits)."""
    try:
        request_analysis(study_id=study_id, trigger="ingest")
    except Exception:  # ingest has already succeeded; the sweep will pick the exam up
        log.exception("could not queue exam %s for analysis", study_id)


def retry_analysis(*, study_id: int, protocol: str | None = None) -> AnalysisRun:
    """Analyse a failed exam again (the failed run is kept). AnalysisRefused if not failed.

    Side effects: as ``request_analysis``.
    """
    study = Study.objects.get(pk=study_id)
    if study.status != ExamStatus.FAILED:
        raise AnalysisRefused(
            f"only a failed exam can be retried; this one is {study.get_status_display().lower()}"
        )
    last = study.analysis_runs.order_by("-pk").first()
    run = request_analysis(
        study_id=study_id,
        trigger="retry",
        protocol=protocol or (last.protocol if last else DEFAULT_PROTOCOL),
        force=True,
    )
    assert run is not None
    return run


# --------------------------------------------------------------------------------------------
# Start: split into batches
# --------------------------------------------------------------------------------------------


def _latest_run_id(study_id: int) -> int | None:
    return (
        AnalysisRun.objects.filter(study_id=study_id).order_by("-pk").values_list("pk", flat=True)
    ).first()


def start_run(*, run_id: int, dispatch: bool = True) -> int:
    """Split the run's exam into frame batches and publish them; returns the number of batches.

    Side effects: creates ``AnalysisBatch`` rows, sets frames_total, moves run and exam to
    ``analysing`` (one transaction); publishes ``analyse_batch`` per batch after commit.
    Repeated calls (a redelivered task, a sweep) do nothing. ``dispatch=False`` (in-process
    analysis) publishes nothing.
    """
    with transaction.atomic():
        run = AnalysisRun.objects.select_for_update().select_related("study").get(pk=run_id)
        if run.status != RunStatus.QUEUED:
            # Already split (a redelivered or swept duplicate): its batches are on their way;
            # a run whose messages were really lost is the sweep's job (no progress for a while).
            return 0
        instances = list(
            Instance.objects.filter(series__study_id=run.study_id).order_by(
                "series__series_number", "series_id", "instance_number", "pk"
            )
        )
        size = batch_frames()
        batches = [
            AnalysisBatch(
                run=run,
                instance=inst,
                first_frame=first,
                last_frame=min(first + size - 1, inst.number_of_frames),
            )
            for inst in instances
            for first in range(1, inst.number_of_frames + 1, size)
        ]
        if not batches:
            _fail(run, "the exam holds no image frames to analyse")
            return 0
        AnalysisBatch.objects.bulk_create(batches, ignore_conflicts=True)
        run.frames_total = sum(b.last_frame - b.first_frame + 1 for b in batches)
        run.batches_total = len(batches)
        run.status = RunStatus.ANALYSING
        run.stage = RunStage.CLASSIFYING
        run.started_at = timezone.now()
        run.save()
        study = run.study
        if study.status == ExamStatus.QUEUED and _latest_run_id(study.pk) == run.pk:
            study.transition_to(ExamStatus.ANALYSING)
        pending = list(run.batches.values_list("pk", flat=True))
        run.batches.update(queued_at=timezone.now())
        if dispatch:
            transaction.on_commit(
                lambda: [publish("webapp.analysis.tasks.analyse_batch", pk) for pk in pending]
            )
    return len(pending)


# --------------------------------------------------------------------------------------------
# Batches: per-frame plane probabilities
# --------------------------------------------------------------------------------------------


def analyse_batch(*, batch_id: int, dispatch: bool = True) -> str:
    """Classify one batch's frames and store them (replacing this batch's earlier rows).

    Side effects: one transaction deletes and re-inserts the batch's ``FramePlaneFinding`` rows,
    marks the batch done and updates the run's progress; the batch that completes the run
    publishes ``finalize_run`` after commit. A frame the model raises on is stored as failed with
    the reason. Returns "done", "skipped" (run no longer analysing) or "already done".
    ``dispatch=False`` (in-process analysis) publishes nothing.
    """
    try:
        batch = AnalysisBatch.objects.select_related("run", "instance").get(pk=batch_id)
    except AnalysisBatch.DoesNotExist:
        return "skipped"
    run = batch.run
    if run.status != RunStatus.ANALYSING:
        return "skipped"
    if batch.status == AnalysisBatch.Status.DONE:
        if dispatch:
            _maybe_finalize(run.pk)
        return "already done"
    AnalysisBatch.objects.filter(pk=batch.pk).update(attempts=F("attempts") + 1)
    models = runtime.models()
    if models.planes is None:
        raise RuntimeError(models.unavailable.get(pipeline.PLANES_MODEL, "no plane classifier"))
    started = time.perf_counter()
    source = runtime.InstanceFrames(batch.instance)
    decoded: dict[int, np.ndarray] = {}
    unreadable: dict[int, pipeline.FramePlanes] = {}
    for n in range(batch.first_frame, batch.last_frame + 1):
        try:
            decoded[n] = source.frame(n)
        except Exception as exc:  # one corrupt frame must not fail the exam
            unreadable[n] = pipeline.FramePlanes(
                frame=n, failed=True, reason=f"frame could not be decoded: {exc}"
            )
    decoded_at = time.perf_counter()
    classified = pipeline.classify_frames(
        models.planes,
        list(decoded.values()),
        frame_numbers=list(decoded),
        bbox=source.fov_box() if decoded else None,
        fail_frames=runtime.fault_frames(batch.instance),
    )
    results = sorted([*classified, *unreadable.values()], key=lambda r: r.frame)
    classified_at = time.perf_counter()
    delay = runtime.debug_hook("batch")
    if delay:
        time.sleep(delay)
    versions = runtime.model_version_rows([models.planes.info])
    planes_version = versions[pipeline.PLANES_MODEL]
    rows = [
        FramePlaneFinding(
            run=run,
            instance=batch.instance,
            frame_number=r.frame,
            probabilities=r.probabilities_json() if not r.failed else {},
            top_plane=r.top_plane,
            top_brain_plane=r.top_brain_plane or "",
            top_view=r.top_view or "",
            top_probability=None if r.failed else r.top_probability,
            failed=r.failed,
            failure_reason=r.reason[:2000],
            model_version=planes_version,
        )
        for r in results
    ]
    failed = sum(r.failed for r in results)
    with transaction.atomic():
        locked = AnalysisRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != RunStatus.ANALYSING:
            return "skipped"
        FramePlaneFinding.objects.filter(
            run=run,
            instance=batch.instance,
            frame_number__gte=batch.first_frame,
            frame_number__lte=batch.last_frame,
        ).delete()
        FramePlaneFinding.objects.bulk_create(rows)
        AnalysisBatch.objects.filter(pk=batch.pk).update(
            status=AnalysisBatch.Status.DONE,
            frames_failed=failed,
            finished_at=timezone.now(),
            worker=socket.gethostname()[:200],
        )
        locked.model_versions.add(planes_version)
        _update_progress(locked)
        if locked.batches_done == locked.batches_total:
            _claim_finalize(locked, dispatch=dispatch)
    log.info(
        "run %s batch %s (%d frames, %d failed): decode %.2f s, classify %.2f s, store %.2f s",
        run.pk,
        batch.pk,
        len(rows),
        failed,
        decoded_at - started,
        classified_at - decoded_at,
        time.perf_counter() - classified_at,
    )
    return "done"


def _update_progress(run: AnalysisRun) -> None:
    done = run.batches.filter(status=AnalysisBatch.Status.DONE)
    totals = done.aggregate(
        frames=Sum(F("last_frame") - F("first_frame") + 1), failed=Sum("frames_failed")
    )
    run.batches_done = done.count()
    run.frames_done = totals["frames"] or 0
    run.frames_failed = totals["failed"] or 0
    run.save(update_fields=["batches_done", "frames_done", "frames_failed", "updated_at"])


def _claim_finalize(run: AnalysisRun, *, dispatch: bool = True) -> None:
    """Under the run's row lock: mark finalisation queued and publish it after commit."""
    run.finalize_queued_at = timezone.now()
    run.stage = RunStage.BEST_FRAMES
    run.save(update_fields=["finalize_queued_at", "stage", "updated_at"])
    run_id = run.pk
    if dispatch:
        transaction.on_commit(lambda: _queue_finalize(run_id))


def _queue_finalize(run_id: int) -> None:
    publish("webapp.analysis.tasks.finalize_run", run_id)


def _maybe_finalize(run_id: int) -> None:
    """A redelivered batch of a complete run re-publishes finalisation (it may have been lost)."""
    with transaction.atomic():
        run = AnalysisRun.objects.select_for_update().get(pk=run_id)
        if run.status == RunStatus.ANALYSING and run.batches_done == run.batches_total:
            _claim_finalize(run)


# --------------------------------------------------------------------------------------------
# Finalise: best frames, measurements, quality, derived biometry
# --------------------------------------------------------------------------------------------


def _mask_png(mask: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(mask.astype(bool)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def mask_from_png(data: bytes) -> np.ndarray:
    """A stored mask back as (rows, cols) bool."""
    from PIL import Image

    with Image.open(io.BytesIO(bytes(data))) as image:
        return np.asarray(image.convert("1"), dtype=bool)


def views_to_search(protocol: str) -> list[str]:
    """The protocol's views, then every other view any protocol requires: one run answers the
    completeness question for every protocol (the exam's own is listed first)."""
    out = list(taxonomy.PROTOCOLS[protocol])
    for views in taxonomy.PROTOCOLS.values():
        out += [v for v in views if v not in out]
    return out


def finalize_run(*, run_id: int) -> str:
    """Best frames, measurements, quality and derived values for a run whose batches are done.

    Side effects: one transaction replaces the run's BestFrame / Segmentation / Measurement /
    Quality / Derived findings, marks the run done and moves the exam to ``ready_for_review``
    (when this is the exam's latest run). Returns "done" or "skipped".
    """
    run = AnalysisRun.objects.select_related("study").get(pk=run_id)
    if run.status != RunStatus.ANALYSING or run.batches_done != run.batches_total:
        return "skipped"
    AnalysisRun.objects.filter(pk=run_id).update(stage=RunStage.BEST_FRAMES)
    models = runtime.models()
    instances = {i.pk: i for i in Instance.objects.filter(pk__in=run.batches.values("instance_id"))}
    per_source: dict[int, list[pipeline.FramePlanes]] = {}
    for row in FramePlaneFinding.objects.filter(run=run).order_by("instance_id", "frame_number"):
        probs = row.probabilities or {}
        per_source.setdefault(row.instance_id, []).append(
            pipeline.FramePlanes(
                frame=row.frame_number,
                plane_probs=probs.get("planes", {}),
                brain_probs=probs.get("brain_planes", {}),
                top_plane=row.top_plane,
                failed=row.failed,
                reason=row.failure_reason,
            )
        )
    views = views_to_search(run.protocol)
    frame_time = {pk: inst.frame_time_ms for pk, inst in instances.items()}
    best = pipeline.choose_best_frames(per_source, views, frame_time_ms=frame_time)

    readers: dict[int, runtime.InstanceFrames] = {}

    def frame_of(instance_id: int, number: int) -> np.ndarray:
        if instance_id not in readers:
            readers[instance_id] = runtime.InstanceFrames(instances[instance_id])
        return readers[instance_id].frame(number)

    AnalysisRun.objects.filter(pk=run_id).update(stage=RunStage.MEASURING)
    head_fm: pipeline.FrameMeasurements | None = None
    head_view = "head_trans_thalamic"
    if models.head is not None and head_view in best and best[head_view].frame is not None:
        best[head_view], head_fm = pipeline.rerank_head(
            models.head,
            best[head_view],
            frame_of,
            lambda iid, n: runtime.calibrator(instances[iid], n),
        )
    # Abdomen (AC / APAD / TAD), femur (FL) and the brain structures the head criteria need.
    structure_fms: dict[str, pipeline.FrameMeasurements] = {}
    if models.structures is not None:
        structure_fms = pipeline.measure_structure_views(
            models.structures,
            best,
            frame_of,
            lambda iid, n: runtime.calibrator(instances[iid], n),
        )
    AnalysisRun.objects.filter(pk=run_id).update(stage=RunStage.QUALITY)
    quality = {}
    for view, choice in best.items():
        if pipeline.rubric_plane(view) is None:
            continue
        frame = frame_of(choice.source, choice.frame) if choice.frame is not None else None
        quality[view] = pipeline.assess_quality(
            view,
            frame,
            head=head_fm if view == head_view else None,
            structures=structure_fms.get(view),
        )
    AnalysisRun.objects.filter(pk=run_id).update(stage=RunStage.BIOMETRY)
    measurements = list(head_fm.measurements) if head_fm is not None else []
    for fm in structure_fms.values():
        measurements += fm.measurements
    derived, not_computed = pipeline.derive_biometry(measurements)

    infos = models.infos()
    versions = runtime.model_version_rows(infos)
    planes_v = versions.get(pipeline.PLANES_MODEL)
    head_v = versions.get(pipeline.HEAD_MODEL)
    structures_v = versions.get(pipeline.STRUCTURES_MODEL)
    with transaction.atomic():
        locked = AnalysisRun.objects.select_for_update().select_related("study").get(pk=run_id)
        if locked.status != RunStatus.ANALYSING:
            return "skipped"
        for model in (
            BestFrameFinding,
            SegmentationFinding,
            MeasurementFinding,
            QualityFinding,
            DerivedFinding,
        ):
            model.objects.filter(run=locked).delete()
        BestFrameFinding.objects.bulk_create(
            BestFrameFinding(
                run=locked,
                view_key=view,
                instance_id=choice.source if choice.frame is not None else None,
                frame_number=choice.frame,
                score=round(choice.score, 6),
                flag=choice.flag,
                evidence=choice.evidence,
                model_version=planes_v if pipeline.recognised(view) else None,
            )
            for view, choice in best.items()
        )
        head_choice = best.get(head_view)
        if head_fm is not None and head_choice is not None and head_choice.frame is not None:
            _store_frame_findings(
                locked, head_choice.source, head_choice.frame, head_view, head_fm, head_v
            )
        for view, fm in structure_fms.items():
            choice = best[view]
            _store_frame_findings(locked, choice.source, choice.frame, view, fm, structures_v)
        quality_rows = []
        for view, pq in quality.items():
            choice = best[view]
            for result in pq.results:
                d = result.to_dict()
                quality_rows.append(
                    QualityFinding(
                        run=locked,
                        view_key=view,
                        rubric_plane=pq.plane,
                        criterion_key=result.key,
                        verdict=d["verdict"],
                        points=d["points"],
                        evidence=d["evidence"],
                        rationale=d["rationale"],
                        instance_id=choice.source if choice.frame is not None else None,
                        frame_number=choice.frame,
                        model_version=head_v
                        if view == head_view and head_fm
                        else structures_v
                        if view in structure_fms
                        else None,
                    )
                )
        QualityFinding.objects.bulk_create(quality_rows)
        DerivedFinding.objects.bulk_create(
            DerivedFinding(
                run=locked,
                kind=d.kind,
                formula_key=d.key,
                value=d.value,
                unit=d.unit,
                inputs=d.inputs,
                formula=d.formula,
                flags=d.flags,
                display=d.display,
            )
            for d in derived
        )
        locked.model_versions.add(*versions.values())
        locked.status = RunStatus.DONE
        locked.stage = RunStage.DONE
        locked.finished_at = timezone.now()
        locked.notes = {
            "models_unavailable": models.unavailable,
            "not_computed": not_computed,
            "quality_scores": {v: q.to_dict()["score"] for v, q in quality.items()},
            "head": None
            if head_fm is None
            else {
                "found": head_fm.found,
                "reason": head_fm.reason,
                "confidence": head_fm.confidence,
            },
            "structures": {
                view: {
                    "found": fm.found,
                    "reason": fm.reason,
                    "confidence": fm.confidence,
                    "validation": pipeline.NOT_VALIDATED,
                }
                for view, fm in structure_fms.items()
            },
        }
        locked.save()
        study = locked.study
        if _latest_run_id(study.pk) == locked.pk and study.status == ExamStatus.ANALYSING:
            study.transition_to(ExamStatus.READY_FOR_REVIEW)
    return "done"


def _store_frame_findings(
    run: AnalysisRun,
    instance_id: int,
    frame_number: int,
    view: str,
    fm: pipeline.FrameMeasurements,
    model_version: str | None,
) -> None:
    """Side effect: one SegmentationFinding per mask and one MeasurementFinding per measurement
    of a view's chosen frame."""
    SegmentationFinding.objects.bulk_create(
        SegmentationFinding(
            run=run,
            instance_id=instance_id,
            frame_number=frame_number,
            structure=seg.structure,
            mask_png=_mask_png(seg.mask),
            rows=seg.mask.shape[0],
            columns=seg.mask.shape[1],
            area_px=int(seg.mask.sum()),
            model_version=model_version,
        )
        for seg in fm.segmentations
    )
    MeasurementFinding.objects.bulk_create(
        _measurement_row(run, instance_id, frame_number, view, m, model_version)
        for m in fm.measurements
    )


def _measurement_row(
    run: AnalysisRun,
    instance_id: int,
    number: int,
    view: str,
    m: pipeline.Measurement,
    version: Any,
) -> MeasurementFinding:
    cal = m.calibration
    return MeasurementFinding(
        run=run,
        instance_id=instance_id,
        frame_number=number,
        view_key=view,
        kind=m.kind,
        geometry_px=m.geometry_px,
        geometry_mm=m.geometry_mm,
        value_px=m.value_px,
        value_mm=m.value_mm,
        unit=m.unit,
        calibration_source=cal.source if cal else "",
        calibration_region_id=cal.ref if cal else None,
        mm_per_pixel_x=cal.mm_per_px_x if cal else None,
        mm_per_pixel_y=cal.mm_per_px_y if cal else None,
        convention=m.convention[:100],
        method=m.method[:200],
        confidence=m.confidence,
        model_version=version,
    )


def run_inline(*, run_id: int, on_progress: Any = None) -> AnalysisRun:
    """Run every step of a queued run in this process (no broker, no worker).

    Side effects: as start_run, analyse_batch and finalize_run; any exception fails the run
    (with the reason) and is re-raised. ``on_progress(run)`` is called after each batch.
    """
    try:
        start_run(run_id=run_id, dispatch=False)
        for pk in (
            AnalysisBatch.objects.filter(run_id=run_id).order_by("pk").values_list("pk", flat=True)
        ):
            analyse_batch(batch_id=pk, dispatch=False)
            if on_progress is not None:
                on_progress(AnalysisRun.objects.get(pk=run_id))
        finalize_run(run_id=run_id)
    except Exception as exc:
        fail_run(run_id=run_id, reason=f"{type(exc).__name__}: {exc}")
        raise
    return AnalysisRun.objects.get(pk=run_id)


# --------------------------------------------------------------------------------------------
# Failure
# --------------------------------------------------------------------------------------------


def _fail(run: AnalysisRun, reason: str) -> None:
    run.status = RunStatus.FAILED
    run.error = reason[:5000]
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at", "updated_at"])
    study = Study.objects.get(pk=run.study_id)
    if _latest_run_id(study.pk) == run.pk and study.status in (
        ExamStatus.RECEIVED,
        ExamStatus.QUEUED,
        ExamStatus.ANALYSING,
    ):
        try:
            study.transition_to(ExamStatus.FAILED, reason=f"analysis failed: {reason}"[:5000])
        except InvalidTransition:
            log.warning("exam %s could not be marked failed", study.pk)


def fail_run(*, run_id: int, reason: str) -> None:
    """Mark a run failed with ``reason`` and, if it is the exam's latest, the exam too.

    Side effects: one transaction on the run and exam rows. A finished run is left alone.
    """
    with transaction.atomic():
        try:
            run = AnalysisRun.objects.select_for_update().get(pk=run_id)
        except AnalysisRun.DoesNotExist:
            return
        if run.status in (RunStatus.DONE, RunStatus.FAILED):
            return
        _fail(run, reason)


# --------------------------------------------------------------------------------------------
# Progress and completeness (read-only)
# --------------------------------------------------------------------------------------------


def latest_run(study: Study) -> AnalysisRun | None:
    return study.analysis_runs.order_by("-pk").first()


def latest_finished_run(study: Study) -> AnalysisRun | None:
    return study.analysis_runs.filter(status=RunStatus.DONE).order_by("-pk").first()


def progress(*, study: Study) -> dict[str, Any]:
    """The exam's analysis progress as JSON-ready data (for the exam page and the worklist)."""
    run = latest_run(study)
    data: dict[str, Any] = {
        "study_id": study.pk,
        "study_instance_uid": study.study_instance_uid,
        "status": study.status,
        "status_display": study.get_status_display(),
        "failure_reason": study.failure_reason,
        "can_retry": study.status == ExamStatus.FAILED,
        "run": None,
    }
    if run is not None:
        total = run.frames_total
        data["run"] = {
            "id": run.pk,
            "status": run.status,
            "stage": run.stage,
            "stage_display": run.get_stage_display(),
            "frames_done": run.frames_done,
            "frames_total": total,
            "frames_failed": run.frames_failed,
            "percent": round(100.0 * run.frames_done / total, 1) if total else 0.0,
            "queued_at": run.queued_at.isoformat(),
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "error": run.error,
        }
    return data


@dataclass(frozen=True)
class ViewStatus:
    view_key: str
    display_name: str
    status: str  # optimal | sub_optimal | missing | needs_person
    instance_id: int | None
    sop_instance_uid: str | None
    frame_number: int | None
    score: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def completeness(*, study: Study, protocol: str | None = None) -> dict[str, Any]:
    """Which views the protocol requires were found optimal, only sub-optimal, or are missing.

    Uses the exam's latest finished run. ``needs_person``: views no model recognises yet (a
    person must mark them). Raises AnalysisRefused for an unknown protocol.
    """
    run = latest_finished_run(study)
    name = protocol or (run.protocol if run else DEFAULT_PROTOCOL)
    if name not in taxonomy.PROTOCOLS:
        raise AnalysisRefused(
            f"unknown protocol {name!r}; expected one of {', '.join(taxonomy.PROTOCOLS)}"
        )
    best = {}
    if run is not None:
        best = {
            b.view_key: b
            for b in BestFrameFinding.objects.filter(run=run).select_related("instance")
        }
    views = []
    for v in taxonomy.protocol(name):
        b = best.get(v.key)
        if v.classifier_label is None:
            status = "needs_person"
        elif b is None or b.flag == BestFrameFinding.Flag.ABSENT:
            status = "missing"
        else:
            status = b.flag
        found = b is not None and b.frame_number is not None
        views.append(
            ViewStatus(
                v.key,
                v.display_name,
                status,
                b.instance_id if found else None,
                b.instance.sop_instance_uid if found and b.instance else None,
                b.frame_number if found else None,
                b.score if b is not None else None,
            )
        )
    groups = {
        s: [v.view_key for v in views if v.status == s]
        for s in ("optimal", "sub_optimal", "missing", "needs_person")
    }
    return {
        "protocol": name,
        "run_id": run.pk if run else None,
        "analysed": run is not None,
        "required": len(views),
        "found": len(groups["optimal"]) + len(groups["sub_optimal"]),
        "complete": run is not None and not groups["missing"] and not groups["needs_person"],
        **groups,
        "views": [v.as_dict() for v in views],
    }


# --------------------------------------------------------------------------------------------
# Sweep: exams stuck because a message was lost (broker down, worker gone)
# --------------------------------------------------------------------------------------------


def sweep_stuck(*, older_than: timedelta = timedelta(minutes=10)) -> list[str]:
    """Re-publish what exams waiting longer than ``older_than`` still need; returns what was done.

    - exam ``received`` with no active run (its queue message never went out): a new run;
    - run ``queued``, untouched since the cut-off: ``start_analysis`` again;
    - run ``analysing`` without progress since the cut-off: its pending batches again, or
      ``finalize_run`` when every batch is done.
    Every step is idempotent, so a message that was only late does no harm.
    """
    cutoff = timezone.now() - older_than
    actions: list[str] = []
    received = Study.objects.filter(
        status=ExamStatus.RECEIVED, status_changed_at__lt=cutoff
    ).exclude(analysis_runs__status__in=ACTIVE_RUN_STATUSES)
    for study in received:
        if not Instance.objects.filter(series__study=study).exists():
            continue
        run = request_analysis(study_id=study.pk, trigger="sweep")
        if run is not None:
            actions.append(f"exam {study.pk}: queued run {run.pk}")
    for run in AnalysisRun.objects.filter(status=RunStatus.QUEUED, updated_at__lt=cutoff):
        if publish("webapp.analysis.tasks.start_analysis", run.pk):
            # at most once per period, so a long backlog does not collect duplicates
            AnalysisRun.objects.filter(pk=run.pk).update(updated_at=timezone.now())
            actions.append(f"run {run.pk}: start re-published")
    stalled = AnalysisRun.objects.filter(
        status__in=(RunStatus.ANALYSING, RunStatus.FINALIZING), updated_at__lt=cutoff
    )
    for run in stalled:
        AnalysisRun.objects.filter(pk=run.pk).update(updated_at=timezone.now())
        if run.batches_done == run.batches_total:
            if publish("webapp.analysis.tasks.finalize_run", run.pk):
                actions.append(f"run {run.pk}: finalize re-published")
            continue
        pending = list(
            run.batches.filter(status=AnalysisBatch.Status.PENDING).values_list("pk", flat=True)
        )
        sent = sum(publish("webapp.analysis.tasks.analyse_batch", pk) for pk in pending)
        actions.append(f"run {run.pk}: {sent} pending batches re-published")
    return actions


def runs_for(study: Study) -> list[AnalysisRun]:
    return list(study.analysis_runs.order_by("-pk").prefetch_related("model_versions"))


def has_active_run(study: Study) -> bool:
    return study.analysis_runs.filter(Q(status__in=ACTIVE_RUN_STATUSES)).exists()
