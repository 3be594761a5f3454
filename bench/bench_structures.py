"""Benchmark: structure model + measurement + quality criteria for one frame (CPU).

Per plane (abdomen, femur, head structures), on held-out phantom frames (256×320), times the
steps the pipeline runs for a chosen frame: structure U-Net (traced as the pipeline loads it) +
masks and detection probabilities, field of view from the image, AC / APAD / TAD or FL geometry,
and every Salomon criterion of the plane. The head's own U-Net is excluded (bench_head.py).

Prints one line per plane and thread count (median and 95th percentile of wall time per frame)
and one JSON object. Target (issue 6): all measurement + quality for one frame ≤ 200 ms on 2 CPU
cores. The machine is shared: the 1-minute load average is printed beside the figures.

Usage: ``python bench/bench_structures.py [--weights PATH] [--frames N] [--threads 1 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from inference import pipeline  # noqa: E402
from inference.structures.data import HELDOUT_SEED_BASE, frame_spec, sample_frame  # noqa: E402

VIEW = {
    "fetal_abdomen": "abdomen_ac",
    "fetal_femur": "femur_fl",
    "fetal_brain": "head_trans_thalamic",
}


def frames_by_plane(n: int) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {p: [] for p in VIEW}
    k = 0
    while min(len(v) for v in out.values()) < n:
        seed = HELDOUT_SEED_BASE + 50_000 + k
        plane = frame_spec(seed).plane
        if len(out[plane]) < n:
            out[plane].append(sample_frame(seed).image)
        k += 1
    return out


def one_frame(seg: pipeline.StructureSegmenter, view: str, frame: np.ndarray) -> None:
    """What the pipeline does for a view's chosen frame (the head's U-Net aside)."""
    if view == "abdomen_ac":
        fm = pipeline.measure_abdomen_frame(seg, frame)
    elif view == "femur_fl":
        fm = pipeline.measure_femur_frame(seg, frame)
    else:
        fm = pipeline.detect_head_structures(seg, frame)
    pipeline.assess_quality(view, frame, structures=fm)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", type=Path, default=pipeline.DEFAULT_STRUCTURES_WEIGHTS)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    args = p.parse_args()

    import torch

    frames = frames_by_plane(args.frames)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        seg = pipeline.StructureSegmenter(args.weights)
        for plane, view in VIEW.items():
            one_frame(seg, view, frames[plane][0])  # warm-up (first traced call optimises)
            times = []
            for frame in frames[plane]:
                t = time.perf_counter()
                one_frame(seg, view, frame)
                times.append((time.perf_counter() - t) * 1000)
            r = {
                "view": view,
                "threads": threads,
                "ms_median": round(statistics.median(times), 1),
                "ms_p95": round(float(np.percentile(times, 95)), 1),
                "frames": len(times),
                "load_avg_1min": round(os.getloadavg()[0], 2),
            }
            rows.append(r)
            print(
                f"{view:20s} threads={threads}: {r['ms_median']:6.1f} ms/frame median, "
                f"p95 {r['ms_p95']} ms ({r['frames']} frames, load {r['load_avg_1min']})",
                flush=True,
            )
    print(
        json.dumps(
            {
                "what": "structure U-Net + masks + FOV + AC/APAD/TAD or FL + quality, one frame",
                "data": "phantom (synthetic) held-out frames, 256x320",
                "model_version": seg.info.version,
                "cpu_count": os.cpu_count(),
                "results": rows,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
