"""``python -m inference.planes.evaluate_cine [--sweeps N] [--frames T]``: best-frame score on phantom.

Classifies synthetic phantom sweeps (inference.phantom.sweep) frame by frame with the shipped
classifier, picks the best frame per view (inference.planes.cine) and scores each choice with the
ACOUSLIC-AI-style weighted frame-selection score against the sweep's known optimal / sub-optimal
ranges. Prints one JSON object. Phantom results: they say nothing about real cine loops.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from inference.phantom.sweep import make_sweep
from inference.planes import cine

# Sweep seeds: evaluation from 5000 (the model card's figures), threshold tuning from 6000. Both
# ranges are reserved (inference.planes.train.RESERVED_SWEEP_SEEDS): no training frame uses them.
EVAL_FIRST_SEED = 5000
TUNE_FIRST_SEED = 6000

VIEWS = (
    "head_trans_thalamic",
    "head_trans_ventricular",
    "head_trans_cerebellar",
    "abdomen_ac",
    "femur_fl",
    "thorax_four_chamber",
    "maternal_cervix",
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inference.planes.evaluate_cine")
    ap.add_argument("--sweeps", type=int, default=10)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument(
        "--first-seed",
        type=int,
        default=EVAL_FIRST_SEED,
        help="first sweep seed (5000: evaluation, 6000: tuning; neither used in training)",
    )
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    from inference.planes.model import DEFAULT_WEIGHTS, Predictor

    torch.set_num_threads(args.threads)
    predictor = Predictor(args.weights or DEFAULT_WEIGHTS)
    per_view: dict[str, list[float]] = {v: [] for v in VIEWS}
    flags: dict[str, dict[str, int]] = {v: {} for v in VIEWS}
    t_cls = 0.0
    for k in range(args.sweeps):
        sweep = make_sweep(seed=args.first_seed + k, n_frames=args.frames)
        t0 = time.perf_counter()
        pred = predictor.predict_cine(sweep.frames)
        t_cls += time.perf_counter() - t0
        choices = cine.best_frames(pred, VIEWS, frame_time_ms=sweep.frame_time_ms)
        for v, s in cine.weighted_frame_selection_score(choices, sweep.truth).items():
            per_view[v].append(s)
            flags[v][choices[v].flag] = flags[v].get(choices[v].flag, 0) + 1
    biometry = [s for v in ("head_trans_thalamic", "abdomen_ac", "femur_fl") for s in per_view[v]]
    report = {
        "data": "synthetic phantom sweeps (not real cine loops)",
        "sweeps": args.sweeps,
        "frames_per_sweep": args.frames,
        "wfss_biometry_views": round(float(np.mean(biometry)), 4),
        "wfss_all_views": round(float(np.mean([s for v in per_view.values() for s in v])), 4),
        "wfss_per_view": {v: round(float(np.mean(s)), 4) for v, s in per_view.items()},
        "flags_per_view": flags,
        "ms_per_frame": round(t_cls / (args.sweeps * args.frames) * 1000, 2),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
