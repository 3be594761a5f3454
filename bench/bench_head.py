"""Head pipeline speed: ms per frame for segmentation + ellipse fit at batch 1 and batch 16.

    .venv/bin/python bench/bench_head.py [--data ../shared/data/hc18] [--threads 2] [--repeats 3]
        [--weights W] [--no-refine]

With the crop model shipped (head_refine.pt) every found head is measured twice: the first pass
on the whole frame, the second on a crop around its ellipse; --no-refine times the first alone.

Uses real HC18 frames when the data folder is there (else synthetic 800×540 speckle frames), the
shipped weights, CPU always and CUDA too when present. Prints one line per (device, batch) and a
final JSON line. Pre-processing, network and post-processing are all inside the timed call;
file reading is not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def load_frames(data: Path, n: int) -> tuple[list[np.ndarray], str]:
    from inference.head.data import list_hc18, read_gray

    try:
        items = list_hc18(data)[:n]
        return [read_gray(it.image_path) for it in items], f"HC18 ({data})"
    except FileNotFoundError:
        rng = np.random.default_rng(0)
        frames = [rng.rayleigh(40, (540, 800)).clip(0, 255).astype(np.uint8) for _ in range(n)]
        return frames, "synthetic speckle 800x540"


def bench(predictor, frames: list[np.ndarray], batch: int, repeats: int) -> dict:
    predictor.predict_batch(frames[:batch])  # warm-up (allocations, lazy init)
    per_frame, cpu = [], []
    for _ in range(repeats):
        for i in range(0, len(frames) - batch + 1, batch):
            chunk = frames[i : i + batch]
            t = time.perf_counter()
            c = time.process_time()
            predictor.predict_batch(chunk, [0.1] * len(chunk))
            per_frame.append((time.perf_counter() - t) * 1000 / len(chunk))
            cpu.append((time.process_time() - c) * 1000 / len(chunk))
    return {
        "batch": batch,
        "ms_per_frame_median": round(statistics.median(per_frame), 1),
        "ms_per_frame_mean": round(statistics.fmean(per_frame), 1),
        "cpu_ms_per_frame_median": round(statistics.median(cpu), 1),  # all threads' CPU time
        "calls": len(per_frame),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "hc18"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--weights", default=None, help="head weights (default: shipped)")
    p.add_argument("--no-refine", action="store_true", help="first pass only (skip the crop model)")
    args = p.parse_args()

    import torch

    from inference.head.predict import HeadPredictor

    frames, source = load_frames(Path(args.data), args.frames)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        for tta in (True, False):
            predictor = HeadPredictor(
                args.weights,
                device=device,
                threads=args.threads,
                flip_tta=tta,
                refine=not args.no_refine,
            )
            for batch in (1, 16):
                r = {
                    "device": device,
                    "flip_tta": tta,
                    **bench(predictor, frames, batch, args.repeats),
                }
                rows.append(r)
                print(
                    f"{device:4s} tta={tta!s:5s} batch {batch:2d}: {r['ms_per_frame_median']:7.1f} ms/frame (median of "
                    f"{r['calls']} calls, mean {r['ms_per_frame_mean']} ms; CPU time {r['cpu_ms_per_frame_median']} ms)",
                    flush=True,
                )
    info = {
        "frames": source,
        "torch_threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "model_version": predictor.version,
        "results": rows,
    }
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
