"""End-to-end analysis speed: a 300-frame phantom cine exam from "received" to "ready for review".

    .venv/bin/python bench/bench_pipeline.py [--frames 300] [--threads 2] [--batch 48]
        [--planes-weights PATH] [--inline-only]

What is timed (one real ``celery worker`` process, solo pool, on a private queue; real Redis and
PostgreSQL; a scratch test database created and dropped by the script):

1. a 30-frame warm-up exam (the worker loads its models on its first task; reported apart);
2. the measured exam: a ``--frames`` phantom sweep written as US Multi-frame DICOM and stored
   through the real ingest service; the clock starts when the ingest transaction has committed
   (the exam is ``received``) and stops when the exam is ``ready_for_review``. Reported: total
   seconds, the classification phase (all frame batches) and frames/s per worker, and the final
   step (best frames, head segmentation and measurement, quality, biometry).

``--inline-only`` skips the database and broker and times ``inference.pipeline.analyse_frames``
on the same frames in this process (the models' share of the time).

The plane classifier weights: the shipped ``inference/weights/planes_classifier.pt`` when present,
else a seeded untrained network of the same architecture (same cost per frame; its outputs mean
nothing — the printout says which). The machine's load average is printed beside the figures:
numbers measured while other jobs (e.g. training) share the CPU are not the machine's capacity.
Phantom frames, not patient data.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def planes_weights(requested: str | None, folder: Path) -> tuple[Path, str]:
    from inference.pipeline import DEFAULT_PLANES_WEIGHTS

    if requested:
        return Path(requested), "given"
    if DEFAULT_PLANES_WEIGHTS.is_file():
        return DEFAULT_PLANES_WEIGHTS, "shipped"
    import torch

    from inference.planes.model import PlaneNet, save_weights

    torch.manual_seed(0)
    path = folder / "planes_untrained.pt"
    save_weights(PlaneNet().eval(), path, {"width": 24, "version": "bench-untrained"})
    return path, "untrained stand-in (shipped weights absent)"


def write_cine(folder: Path, *, seed: int, frames: int) -> Path:
    from inference.phantom.dicom import ExamIds, write_us_multiframe
    from inference.phantom.sweep import make_sweep

    sweep = make_sweep(seed=seed, n_frames=frames)
    tag = uuid.uuid4().int
    ids = ExamIds.for_exam(seed, 1, f"bench {frames} frames")
    ids = type(ids)(**{**ids.__dict__, "study_uid": f"2.25.{tag}"})
    return write_us_multiframe(
        folder / f"bench-{seed}-{frames}.dcm",
        sweep.frames,
        fov=sweep.fov,
        pixel_mm=sweep.pixel_mm,
        frame_time_ms=sweep.frame_time_ms,
        ids=ids,
        series_uid=f"2.25.{tag + 1}",
        sop_uid=f"2.25.{tag + 2}",
    )


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def inline(frames_n: int, weights: Path, threads: int) -> dict:
    import numpy as np
    import torch

    from inference import pipeline
    from inference.phantom.sweep import make_sweep

    torch.set_num_threads(threads)
    sweep = make_sweep(seed=5, n_frames=frames_n)
    models = pipeline.load_models(planes_weights=weights)
    cal = pipeline.PixelCalibration(sweep.pixel_mm, sweep.pixel_mm, "us_regions")
    pipeline.analyse_frames(sweep.frames[:30], models=models)  # warm-up
    t = time.perf_counter()
    result = pipeline.analyse_frames(
        np.asarray(sweep.frames), models=models, calibrate_for_frame=lambda n: lambda p: cal
    )
    seconds = time.perf_counter() - t
    return {
        "mode": "inline (inference.pipeline.analyse_frames, no database)",
        "frames": frames_n,
        "seconds": round(seconds, 2),
        "frames_per_s": round(frames_n / seconds, 1),
        "best": {k: [v.frame, v.flag] for k, v in result.best.items()},
    }


def end_to_end(frames_n: int, weights: Path, threads: int, batch: int) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.test")
    # A scratch database of its own (test_sonoreview_bench_<pid>), never one a test run uses.
    os.environ.setdefault(
        "DATABASE_URL",
        f"postgres://sonoreview:sonoreview@127.0.0.1:5432/sonoreview_bench_{os.getpid()}",
    )
    os.environ["SONOREVIEW_PLANES_WEIGHTS"] = str(weights)
    queue = f"inference-bench-{os.getpid()}"
    os.environ["SONOREVIEW_ANALYSIS_QUEUE"] = queue
    import django

    django.setup()
    from django.conf import settings
    from django.db import connections
    from django.test.utils import setup_databases, teardown_databases

    from webapp.analysis.models import AnalysisRun
    from webapp.celery import app
    from webapp.exams.models import Study
    from webapp.exams.services import ingest_file
    from webapp.settings.env import database_url_from_settings

    old_config = setup_databases(verbosity=0, interactive=False, serialized_aliases=set())
    work = Path(tempfile.mkdtemp(prefix="sonoreview-bench-"))
    hostname = f"bench-{os.getpid()}@{socket.gethostname()}"
    log = (work / "worker.log").open("w")
    env = {
        **os.environ,
        "DATABASE_URL": database_url_from_settings(connections["default"].settings_dict),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "SONOREVIEW_ANALYSIS_BATCH_FRAMES": str(batch),
        "OMP_NUM_THREADS": str(threads),
        "SONOREVIEW_TORCH_THREADS": str(threads),
    }
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "webapp",
            "worker",
            "-Q",
            queue,
            "--pool=solo",
            "-n",
            hostname,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not app.control.ping(destination=[hostname], timeout=0.5):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker did not start:\n{(work / 'worker.log').read_text()}")

        def analyse(path: Path, timeout: float = 600) -> tuple[float, AnalysisRun]:
            result = ingest_file(source=path, file_name=path.name, route="upload")
            assert result.outcome == "stored", result.reason
            t0 = time.perf_counter()  # the ingest transaction has committed: "received"
            while True:
                study = Study.objects.get(pk=result.study_id)
                if study.status in ("ready_for_review", "failed"):
                    break
                if time.perf_counter() - t0 > timeout:
                    raise SystemExit(f"exam not analysed in {timeout} s")
                time.sleep(0.05)
            seconds = time.perf_counter() - t0
            run = AnalysisRun.objects.filter(study=study).latest("pk")
            if study.status == "failed":
                raise SystemExit(f"analysis failed: {study.failure_reason}")
            return seconds, run

        warm_s, _ = analyse(write_cine(work, seed=1, frames=30))
        total_s, run = analyse(write_cine(work, seed=2, frames=frames_n))
        classify_s = (run.finalize_queued_at - run.started_at).total_seconds()
        ends = [run.started_at, *sorted(run.batches.values_list("finished_at", flat=True))]
        per_batch = [round((b - a).total_seconds(), 2) for a, b in itertools.pairwise(ends)]
        final_s = (run.finished_at - run.finalize_queued_at).total_seconds()
        wait_s = (run.started_at - run.queued_at).total_seconds()
        return {
            "mode": "end to end: ingest committed → ready_for_review, 1 worker (solo pool)",
            "frames": frames_n,
            "batch_frames": batch,
            "torch_threads": threads,
            "warm_up_exam_30_frames_s": round(warm_s, 2),
            "seconds": round(total_s, 2),
            "queue_to_start_s": round(wait_s, 2),
            "classification_s": round(classify_s, 2),
            "classification_frames_per_s": round(frames_n / classify_s, 1),
            "finalize_s": round(final_s, 2),
            "per_batch_s": per_batch,
            "end_to_end_frames_per_s": round(frames_n / total_s, 1),
            "notes": run.notes.get("head"),
        }
    finally:
        os.killpg(worker.pid, 15)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, 9)
        log.close()
        connections.close_all()
        teardown_databases(old_config, verbosity=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the worker")
    parser.add_argument("--batch", type=int, default=48, help="frames per analysis task")
    parser.add_argument("--planes-weights")
    parser.add_argument("--inline-only", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sonoreview-bench-weights-"))
    weights, origin = planes_weights(args.planes_weights, folder)
    print(f"machine: {platform.processor() or platform.machine()}, {load()}")
    print(f"plane classifier: {weights} ({origin}); phantom frames 256x320 uint8")
    results = [inline(args.frames, weights, args.threads)]
    r = results[0]
    print(f"inline: {r['frames']} frames in {r['seconds']} s = {r['frames_per_s']} frames/s")
    if not args.inline_only:
        e = end_to_end(args.frames, weights, args.threads, args.batch)
        results.append(e)
        print(
            f"end to end: {e['frames']}-frame cine received → ready_for_review in {e['seconds']} s "
            f"(queue wait {e['queue_to_start_s']} s, classification {e['classification_s']} s = "
            f"{e['classification_frames_per_s']} frames/s per worker, final step "
            f"{e['finalize_s']} s); warm-up 30-frame exam {e['warm_up_exam_30_frames_s']} s"
        )
        target = "meets" if e["seconds"] <= 10 else "misses"
        print(f"target ≤ 10 s for {args.frames} frames on 2 cores: {target} ({e['seconds']} s)")
    print(f"after: {load()}")
    print(json.dumps({"load_after": load(), "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
