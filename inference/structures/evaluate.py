"""Evaluate the structure U-Net on held-out phantom frames:
``python -m inference.evaluate structures [--frames N] [--weights PATH] [--out report.json]``.

Frames are :func:`inference.structures.data.sample_frame` of seeds ``HELDOUT_SEED_BASE + k``
(disjoint from every training seed). Prints ONE JSON object:

* ``dice``: per class, mean Dice (full-frame resolution) over held-out frames whose truth holds the
  structure, and ``false_positive_rate``: share of frames without it where the mask is non-empty;
* ``ac`` / ``fl``: relative error (%) of AC and FL against the generator's truth — mean, median,
  95th percentile, max and the share within 2 % — on frames where the truth is measurable (abdomen
  wholly inside the field of view; femur with both ends visible and the whole diaphysis in plane);
  ``fl_standard``: the femur frames of those that are measurable by the clinical rule too (angle to
  the horizontal < 45°: a steeper bone lies along the scan lines and shadows its own far part, on
  the phantom as on a scanner); AC uses the field of view estimated from the image, as the
  pipeline does;
* ``criteria``: agreement of met / not met with the generator's truth over assessable criteria
  (those with a generator truth: calipers have none), per criterion and overall, with how many were
  not assessable; head criteria use the shipped head model for the head's outline (as the
  pipeline), ``--no-head-model`` leaves the head's fill / calipers / symmetry unassessed;
* ``ms_per_frame``: structure network + post-processing + measurement + quality (mean, one frame at
  a time, threads as ``--threads``).

``--plane fetal_femur`` keeps only that plane's held-out frames (a larger sample of one plane);
``--femur-refine none`` measures FL on the first pass's mask (no second look).

All numbers are phantom (synthetic): not validated on real images.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from inference.phantom.criteria import CRITERION_TRUTH as TRUTH
from inference.structures.data import CLASSES, HELDOUT_SEED_BASE, frame_spec, sample_frame

RUBRIC = {"fetal_brain": "head", "fetal_abdomen": "abdomen", "fetal_femur": "femur"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m inference.evaluate structures", description=__doc__)
    p.add_argument("--frames", type=int, default=300, help="held-out phantom frames")
    p.add_argument("--first", type=int, default=0, help="first held-out index")
    p.add_argument(
        "--plane",
        choices=sorted(RUBRIC),
        default=None,
        help="only held-out frames of this plane (the first N of them): a larger sample of one",
    )
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument(
        "--femur-refine",
        default=None,
        help="femur second look's weights (default: femur_refine.pt beside the weights); 'none': "
        "first pass only",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-head-model", action="store_true")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.add_argument(
        "--oracle",
        action="store_true",
        help="the phantom's exact masks instead of the network (the criteria logic's ceiling)",
    )
    return p.parse_args(argv)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


def _summary(errors: list[float]) -> dict:
    if not errors:
        return {"n": 0}
    e = np.abs(np.asarray(errors))
    return {
        "n": len(e),
        "mean_abs_pct": round(float(e.mean()), 3),
        "median_abs_pct": round(float(np.median(e)), 3),
        "p95_abs_pct": round(float(np.percentile(e, 95)), 3),
        "max_abs_pct": round(float(e.max()), 3),
        "within_2pct": round(float(np.mean(e <= 2.0)), 4),
        "mean_signed_pct": round(float(np.mean(errors)), 3),
    }


def evaluate(
    n_frames: int,
    *,
    first: int = 0,
    weights: Path | None = None,
    threads: int = 1,
    head_model: bool = True,
    oracle: bool = False,
    femur_refine: str | None = None,
    only_plane: str | None = None,
) -> dict:
    """The report described in the module docstring (a dict)."""
    from inference.pipeline import fill_holes
    from inference.quality.assess import assess_plane
    from inference.quality.fov import estimate_field_of_view
    from inference.quality.results import Verdict
    from inference.structures.data import targets
    from inference.structures.evidence import (
        abdomen_measurement,
        femur_measurement,
        plane_evidence,
    )
    from inference.structures.predict import VALIDATION, StructurePredictor, postprocess

    refine: bool | str = True if femur_refine is None else femur_refine
    if refine == "none":
        refine = False
    predictor = StructurePredictor(weights, device="cpu", threads=threads, femur_refine=refine)
    head = None
    if head_model:
        from inference.head.predict import HeadPredictor

        head = HeadPredictor(device="cpu", threads=threads)
    dice: dict[str, list[float]] = defaultdict(list)
    fp: dict[str, list[bool]] = defaultdict(list)
    ac_err: list[float] = []
    fl_err: list[float] = []
    fl_std_err: list[float] = []
    failures: dict[str, int] = defaultdict(int)
    agree: dict[str, list[bool]] = defaultdict(list)
    not_assessable: dict[str, int] = defaultdict(int)
    times: list[float] = []
    seeds = [HELDOUT_SEED_BASE + first + k for k in range(n_frames)]
    if only_plane is not None:
        seeds, k = [], first
        while len(seeds) < n_frames:
            if frame_spec(HELDOUT_SEED_BASE + k).plane == only_plane:
                seeds.append(HELDOUT_SEED_BASE + k)
            k += 1
    for seed in seeds:
        frame = sample_frame(seed)
        plane = RUBRIC[frame.plane]
        t0 = time.perf_counter()
        if oracle:  # exact masks, first-pass post-processing (no second look)
            pred = postprocess(targets(frame.masks), frame.image.shape)
        else:
            pred = predictor.predict(frame.image)
        fov = estimate_field_of_view(frame.image)
        abdomen = femur = None
        try:
            if plane == "abdomen":
                abdomen = abdomen_measurement(pred, fov=fov, pixel_size_mm=frame.pixel_mm)
            elif plane == "femur":
                femur = femur_measurement(pred, pixel_size_mm=frame.pixel_mm)
        except ValueError:
            failures[plane] += 1
        head_mask = head_ellipse = None
        t_head = 0.0
        if plane == "head" and head is not None:
            th = time.perf_counter()
            r = head.predict_batch([frame.image], [None], return_masks=True)[0]
            t_head = time.perf_counter() - th
            if r.found and r.mask is not None:
                head_mask, head_ellipse = fill_holes(r.mask.astype(bool)), r.ellipse
        ev = plane_evidence(
            plane,
            pred,
            image=frame.image,
            fov=fov,
            head_mask=head_mask,
            head_ellipse=head_ellipse,
            abdomen=abdomen,
            femur=femur,
        )
        quality = assess_plane(plane, ev)
        times.append(time.perf_counter() - t0 - t_head)
        # segmentation
        for name in CLASSES:
            truth = frame.masks.get(name)
            mask = pred.masks[name]
            if truth is not None and truth.any():
                dice[name].append(_dice(mask, truth))
            else:
                fp[name].append(bool(mask.any()))
        # measurements
        if abdomen is not None and frame.criteria.get("abdomen_inside_fov"):
            ac_err.append(100.0 * (abdomen.ac_mm / frame.measurements_mm["AC"] - 1.0))
        if (
            femur is not None
            and "FL" in frame.measurements_mm
            and frame.criteria.get("both_ends_visible")
        ):
            fl_err.append(100.0 * (femur.length_mm / frame.measurements_mm["FL"] - 1.0))
            if frame.criteria.get("angle_under_45deg"):
                fl_std_err.append(fl_err[-1])
        # criteria
        for r in quality.results:
            if r.key not in TRUTH:
                continue
            if r.verdict is Verdict.NOT_ASSESSABLE:
                not_assessable[r.key] += 1
                continue
            agree[r.key].append((r.verdict is Verdict.MET) == bool(frame.criteria[TRUTH[r.key]]))
    total = sum(len(v) for v in agree.values())
    agreed = sum(sum(v) for v in agree.values())
    planes = [frame_spec(s).plane for s in seeds]
    return {
        "data": f"phantom (synthetic), held-out seeds {seeds[0]}..{seeds[-1]}"
        + (f" ({only_plane} frames only)" if only_plane else ""),
        "validation": VALIDATION,
        "weights": str(weights or "inference/weights/structures_unet.pt"),
        "model_version": "oracle (the phantom's exact masks)" if oracle else predictor.version,
        "frames": {p: planes.count(p) for p in sorted(set(planes))},
        "dice": {
            name: {
                "mean": round(float(np.mean(dice[name])), 4) if dice[name] else None,
                "median": round(float(np.median(dice[name])), 4) if dice[name] else None,
                "frames_with_structure": len(dice[name]),
                "false_positive_rate": round(float(np.mean(fp[name])), 4) if fp[name] else None,
                "frames_without_structure": len(fp[name]),
            }
            for name in CLASSES
        },
        "ac": _summary(ac_err),
        "fl": _summary(fl_err),
        "fl_standard": _summary(fl_std_err),
        "measurement_failures": dict(failures),
        "criteria": {
            "agreement": round(agreed / total, 4) if total else None,
            "assessable": total,
            "not_assessable": sum(not_assessable.values()),
            "per_criterion": {
                k: {
                    "agreement": round(float(np.mean(agree[k])), 4) if agree[k] else None,
                    "assessable": len(agree[k]),
                    "not_assessable": not_assessable.get(k, 0),
                }
                for k in TRUTH
            },
            "head_model": "shipped head U-Net" if head is not None else "none",
            "fov": "estimated from the image (as the pipeline without DICOM regions)",
        },
        "ms_per_frame": {
            "mean": round(1000 * float(np.mean(times)), 1),
            "median": round(1000 * float(np.median(times)), 1),
            "threads": threads,
            "what": "structure network + masks + AC/FL + quality criteria (head model excluded)",
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv or [])
    report = evaluate(
        args.frames,
        first=args.first,
        weights=args.weights,
        threads=args.threads,
        head_model=not args.no_head_model,
        oracle=args.oracle,
        femur_refine=args.femur_refine,
        only_plane=args.plane,
    )
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0
