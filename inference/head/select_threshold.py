"""Choose the crop model's robust-fit threshold on TRAINING subjects (never the held-out ones):
``python -m inference.head.select_threshold --data DIR [--limit N] [--thresholds 1 1.5 2 3 5]``.

For each image (one per training subject, the first N), the first pass finds the head, the crop
model segments the crop around it once, and the ellipse is fitted with each threshold. Prints one
JSON object: per threshold the HC mean absolute difference and bias (mm) and the failures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from inference.head.data import list_hc18, read_gray
from inference.head.predict import DEFAULT_WEIGHTS, HeadPredictor, postprocess, preprocess
from inference.head.refine import crop_window, cut


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m inference.head.select_threshold")
    p.add_argument("--data", required=True)
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--limit", type=int, default=150)
    p.add_argument("--thresholds", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0, 5.0])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    split = json.loads((Path(args.weights).parent / "head_split.json").read_text())
    train = set(split["train_subjects"])
    first: dict[str, object] = {}
    for it in list_hc18(args.data):
        if it.subject in train:
            first.setdefault(it.subject, it)
    items = list(first.values())[: args.limit]
    pred = HeadPredictor(args.weights, threads=args.threads)
    if pred.refine_model is None:
        raise SystemExit("no head_refine.pt beside the weights")
    crop_model, pred.refine_model = pred.refine_model, None
    cases = []
    for it in items:
        frame = read_gray(it.image_path).astype(np.float32)
        first_pass = pred.predict_batch([frame], it.pixel_size_mm)[0]
        if not first_pass.found:
            continue
        window = crop_window(first_pass.ellipse, pred.refine_shape[1] / pred.refine_shape[0])
        x, boxed, s = preprocess(cut(frame, window), pred.refine_shape)
        pred.refine_model = crop_model
        prob = pred.probabilities(x[None], refine=True)[0]
        pred.refine_model = None
        cases.append((it, prob, boxed, s, (window.height, window.width)))
    report: dict[str, object] = {"n": len(cases), "subjects": "training", "thresholds": {}}
    for t in args.thresholds:
        errors, failed = [], 0
        for it, prob, boxed, s, shape in cases:
            ellipse = postprocess(prob, boxed, s, shape, t)[0]
            if ellipse is None:
                failed += 1
                continue
            errors.append(ellipse.perimeter * it.pixel_size_mm - it.hc_mm)
        e = np.array(errors)
        report["thresholds"][str(t)] = {  # type: ignore[index]
            "hc_mad_mm": round(float(np.abs(e).mean()), 4),
            "hc_bias_mm": round(float(e.mean()), 4),
            "failed": failed,
        }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
