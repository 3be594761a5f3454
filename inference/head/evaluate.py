"""HC18 evaluation: ``python -m inference.evaluate hc18 --data DIR [--out report.json]``.

Reads the HC18 training layout (``training_set/NNN_HC.png`` + ``NNN_HC_Annotation.png``,
``training_set_pixel_size_and_HC.csv``), measures each image with the shipped head weights and
prints ONE JSON object with the challenge metrics: ``hc_mad_mm`` (mean absolute HC difference,
mm, against the CSV), ``hc_mad_sd_mm``, ``dice`` (fitted ellipse vs the filled annotation ellipse),
``hausdorff_mm`` (between the two ellipse outlines), ``no_head`` (images with no result; the
other metrics are over the images with a result), ``ms_per_image`` (pre-processing + network +
post-processing, file reading excluded). With the caliper points of the multi-centre biometry
benchmark (``--landmarks``, default ``DIR/../biometry_landmarks/HC18/Head.csv`` when present) it
adds BPD and OFD mean absolute errors in mm (our BPD is outer-to-outer, the minor axis).

By default only the held-out validation subjects (``head_split.json`` beside the weights) are
measured, so the figure is not inflated by training images; ``--subjects all`` measures all.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from inference.geometry import Ellipse, dice, hausdorff_ellipses, rasterize_ellipse
from inference.head.data import annotation_ellipse, list_hc18, read_gray


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m inference.evaluate hc18",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="folder in the HC18 training layout")
    p.add_argument("--weights", default=None, help="head weights (default: shipped)")
    p.add_argument(
        "--split", default=None, help="split JSON (default: head_split.json beside weights)"
    )
    p.add_argument("--subjects", choices=["held-out", "all"], default="held-out")
    p.add_argument("--landmarks", default=None, help="HC18 caliper CSV (Head.csv) for BPD/OFD")
    p.add_argument("--out", default=None, help="also write the report (with per-image rows) here")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument(
        "--no-flip-tta", action="store_true", help="do not average with the mirrored frame"
    )
    return p.parse_args(argv)


def read_landmarks(path: Path) -> dict[str, dict[str, float]]:
    """Per image name: OFD and BPD lengths in px from the caliper end points (original pixels)."""
    out: dict[str, dict[str, float]] = {}
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            try:
                f = {
                    k: float(r[k])
                    for k in (
                        "ofd_1_x",
                        "ofd_1_y",
                        "ofd_2_x",
                        "ofd_2_y",
                        "bpd_1_x",
                        "bpd_1_y",
                        "bpd_2_x",
                        "bpd_2_y",
                    )
                }
            except (KeyError, ValueError):
                continue
            out[r["image_name"].strip()] = {
                "ofd_px": math.hypot(f["ofd_1_x"] - f["ofd_2_x"], f["ofd_1_y"] - f["ofd_2_y"]),
                "bpd_px": math.hypot(f["bpd_1_x"] - f["bpd_2_x"], f["bpd_1_y"] - f["bpd_2_y"]),
            }
    return out


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _sd(values: list[float]) -> float | None:
    return round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else None


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    from inference.head.predict import DEFAULT_WEIGHTS, HeadPredictor

    weights = Path(args.weights) if args.weights else DEFAULT_WEIGHTS
    try:
        items = list_hc18(args.data)
    except FileNotFoundError as exc:
        print(f"hc18: {exc}", file=sys.stderr)
        return 2
    if args.subjects == "held-out":
        split_path = Path(args.split) if args.split else weights.parent / "head_split.json"
        if not split_path.is_file():
            print(
                f"hc18: no split file at {split_path} (use --subjects all or --split)",
                file=sys.stderr,
            )
            return 2
        held_out = set(json.loads(split_path.read_text())["val_subjects"])
        items = [it for it in items if it.subject in held_out]
    landmarks_path = (
        Path(args.landmarks)
        if args.landmarks
        else (Path(args.data).resolve().parent / "biometry_landmarks" / "HC18" / "Head.csv")
    )
    landmarks = read_landmarks(landmarks_path) if landmarks_path.is_file() else {}
    if args.landmarks and not landmarks:
        print(f"hc18: no usable caliper points in {landmarks_path}", file=sys.stderr)
        return 2

    predictor = HeadPredictor(
        weights, device=args.device, threads=args.threads, flip_tta=not args.no_flip_tta
    )
    rows: list[dict] = []
    seconds = 0.0
    for start in range(0, len(items), args.batch):
        chunk = items[start : start + args.batch]
        frames = [read_gray(it.image_path) for it in chunk]
        t = time.perf_counter()
        results = predictor.predict_batch(frames, [it.pixel_size_mm for it in chunk])
        seconds += time.perf_counter() - t
        for it, frame, res in zip(chunk, frames, results, strict=True):
            row: dict = {
                "image": it.name,
                "subject": it.subject,
                "found": res.found,
                "reason": res.reason,
                "confidence": round(res.confidence, 4),
                "hc_ref_mm": it.hc_mm,
            }
            if res.found and res.ellipse is not None:
                ref = Ellipse.from_axes(*annotation_ellipse(read_gray(it.annotation_path)))
                shape = frame.shape
                row.update(
                    hc_mm=res.hc_mm,
                    hc_err_mm=res.hc_mm - it.hc_mm,
                    bpd_mm=res.bpd_mm,
                    ofd_mm=res.ofd_mm,
                    dice=dice(rasterize_ellipse(shape, res.ellipse), rasterize_ellipse(shape, ref)),
                    hausdorff_mm=hausdorff_ellipses(res.ellipse, ref) * it.pixel_size_mm,
                    ellipse=res.ellipse.to_dict(),
                )
                if it.name in landmarks:
                    lm = landmarks[it.name]
                    row["bpd_err_mm"] = res.bpd_mm - lm["bpd_px"] * it.pixel_size_mm
                    row["ofd_err_mm"] = res.ofd_mm - lm["ofd_px"] * it.pixel_size_mm
            rows.append(row)

    found = [r for r in rows if r["found"]]
    hc_abs = [abs(r["hc_err_mm"]) for r in found]
    bpd_abs = [abs(r["bpd_err_mm"]) for r in found if "bpd_err_mm" in r]
    ofd_abs = [abs(r["ofd_err_mm"]) for r in found if "ofd_err_mm" in r]
    report = {
        "n": len(rows),
        "subjects": args.subjects,
        "n_subjects": len({r["subject"] for r in rows}),
        "model_version": predictor.version,
        "hc_mad_mm": _mean(hc_abs),
        "hc_mad_sd_mm": _sd(hc_abs),
        "hc_bias_mm": _mean([r["hc_err_mm"] for r in found]),
        "hc_abs_err_median_mm": round(float(np.median(hc_abs)), 4) if hc_abs else None,
        "hc_abs_err_max_mm": round(float(np.max(hc_abs)), 4) if hc_abs else None,
        "dice": _mean([r["dice"] for r in found]),
        "dice_sd": _sd([r["dice"] for r in found]),
        "hausdorff_mm": _mean([r["hausdorff_mm"] for r in found]),
        "hausdorff_sd_mm": _sd([r["hausdorff_mm"] for r in found]),
        "no_head": len(rows) - len(found),
        "bpd_mae_mm": _mean(bpd_abs),
        "bpd_bias_mm": _mean([r["bpd_err_mm"] for r in found if "bpd_err_mm" in r]),
        "ofd_mae_mm": _mean(ofd_abs),
        "ofd_bias_mm": _mean([r["ofd_err_mm"] for r in found if "ofd_err_mm" in r]),
        "n_landmarks": len(bpd_abs),
        "bpd_convention": "outer-to-outer (minor axis of the fitted outer-skull ellipse)",
        "ms_per_image": round(1000 * seconds / max(1, len(rows)), 1),
        "batch": args.batch,
        "device": str(predictor.device),
        "flip_tta": predictor.flip_tta,
    }
    print(json.dumps(report))
    if args.out:
        Path(args.out).write_text(json.dumps({**report, "images": rows}, indent=1) + "\n")
    return 0
