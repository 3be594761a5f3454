"""Benchmark: biometry formulas and per-frame measurement + Salomon quality criteria (CPU).

Prints milliseconds per call, measured here (median and 95th percentile over repeated runs):

* formulas — ``compute_all`` for BPD/HC/AC/FL/OFD + GA (12 GA estimates, 5 EFWs, 6 centiles),
  with and without JSON serialisation;
* per frame — field of view estimated from the image, the plane's geometry from its mask
  (abdomen ellipse / femur end points; the head's ellipse is given, as the head predictor makes it),
  and every quality criterion of the plane, on phantom frames at the phantom's default size
  (256×320) and at HC18's 540×800.

Target (issue 6): all measurement + quality for one frame ≤ 200 ms on 2 CPU cores. Model inference
(segmentation) is not included: it belongs to the models' own benchmarks.

It also prints phantom figures (labelled as such): agreement of the criteria with the generator's
truth flags, and AC / FL from the phantom's exact masks against its truth.

Usage: ``python bench/bench_biometry.py [--repeats N] [--phantom-frames N]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np

from inference.abdomen import measure_abdomen
from inference.biometry import compute_all
from inference.femur import measure_femur
from inference.geometry import Ellipse
from inference.phantom.criteria import CRITERION_TRUTH as TRUTH
from inference.phantom.generator import make_frame
from inference.quality import PlaneEvidence, PlaneQuality, assess_plane, estimate_field_of_view
from inference.quality.criteria import touches_fov_edge

TAXONOMY = {"head": "fetal_brain", "abdomen": "fetal_abdomen", "femur": "fetal_femur"}
STRUCTURES = {
    "head": ("thalami", "cavum_septi_pellucidi", "cerebellum"),
    "abdomen": ("stomach", "umbilical_vein", "kidneys"),
}


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
    runs.sort()
    return statistics.median(runs), runs[min(len(runs) - 1, int(0.95 * len(runs)))]


def frame_pipeline(frame, plane: str, fov: np.ndarray | None = None) -> Callable[[], PlaneQuality]:
    """FOV from the image (unless given) + geometry from the mask + all criteria, per frame."""
    given_fov = fov
    mask = frame.masks[plane]
    detections = {
        s: (0.95 if s in frame.masks and frame.masks[s].any() else 0.05)
        for s in STRUCTURES.get(plane, ())
    }
    extra = {k: frame.masks[k] for k in ("thalami", "ribs", "spine") if k in frame.masks}

    def run() -> PlaneQuality:
        fov = estimate_field_of_view(frame.image) if given_fov is None else given_fov
        if plane == "femur":
            femur = measure_femur(mask, frame.pixel_mm)
            ev = PlaneEvidence(
                fov=fov, structure_mask=mask, femur=femur, femur_calipers=femur.end_points
            )
        else:
            if plane == "abdomen":
                ellipse = measure_abdomen(mask, frame.pixel_mm, fov=fov).ellipse
            else:
                e = frame.landmarks["head"]
                ellipse = Ellipse.from_axes(e.cx, e.cy, e.a, e.b, e.angle)
            ev = PlaneEvidence(
                fov=fov, structure_mask=mask, ellipse=ellipse, detections=detections, masks=extra
            )
        return assess_plane(plane, ev)

    return run


def phantom_checks(n_frames: int) -> None:
    """Phantom figures (not accuracy on real images): criteria vs the generator's truth flags with
    the phantom's exact masks and oracle detections, and AC / FL geometry vs its truth."""
    rng = np.random.default_rng(0)
    agree = total = not_assessable = 0
    for seed in range(n_frames):
        for plane in ("head", "abdomen", "femur"):
            if plane == "femur":
                params = {
                    "angle_deg": float(rng.choice([10, -20, 60, -70])),
                    "fill": float(rng.choice([0.2, 0.45])),
                    "ends_visible": bool(rng.random() < 0.8),
                }
            else:
                flags = (
                    ("thalami", "csp", "cerebellum")
                    if plane == "head"
                    else ("stomach", "umbilical_vein", "kidneys")
                )
                params = {
                    f: bool(rng.random() < (0.3 if f in {"cerebellum", "kidneys"} else 0.8))
                    for f in flags
                }
                params |= {
                    "asymmetry": float(rng.choice([0.0, 0.0, 0.1, 0.2])),
                    "fill": float(rng.choice([0.2, 0.4])),
                }
            frame = make_frame(TAXONOMY[plane], seed=1000 + seed, **params)
            if plane == "femur" and not frame.masks["femur"].any():
                not_assessable += 3
                continue
            quality = frame_pipeline(frame, plane, fov=frame.fov)()
            for r in quality.results:
                if r.key not in TRUTH:
                    continue
                if r.verdict.value == "not_assessable":
                    not_assessable += 1
                    continue
                total += 1
                agree += (r.verdict.value == "met") == frame.criteria[TRUTH[r.key]]
    print(
        f"phantom criteria vs generator truth: {agree}/{total} assessable agree "
        f"({agree / max(total, 1):.1%}); {not_assessable} not assessable "
        f"({3 * n_frames} frames, exact masks, oracle detections)"
    )
    ac_err, fl_err, cut = [], [], 0
    for seed in range(n_frames):
        f = make_frame("fetal_abdomen", seed=2000 + seed)
        ac = measure_abdomen(f.masks["abdomen"], f.pixel_mm, fov=f.fov).ac_mm
        ac_err.append(abs(ac / f.measurements_mm["AC"] - 1))
        f = make_frame("fetal_femur", seed=2000 + seed, ends_visible=True)
        if "FL" not in f.measurements_mm or not f.masks["femur"].any():
            continue
        if touches_fov_edge(f.masks["femur"], f.fov):  # a tip cut off by the sector edge
            cut += 1
            continue
        fl = measure_femur(f.masks["femur"], f.pixel_mm).length_mm
        fl_err.append(abs(fl / f.measurements_mm["FL"] - 1))
    print(
        f"phantom AC from the exact mask vs truth: mean |error| {np.mean(ac_err):.2%}, "
        f"max {np.max(ac_err):.2%} ({len(ac_err)} frames)"
    )
    print(
        f"phantom FL from the exact mask vs the generator's FL (diaphysis tip to tip): mean "
        f"|error| {np.mean(fl_err):.2%}, max {np.max(fl_err):.2%} ({len(fl_err)} frames; {cut} "
        "more had the bone cut by the sector edge and were left out)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--phantom-frames", type=int, default=40, help="frames per plane for the phantom figures"
    )
    args = parser.parse_args(argv)

    print(
        f"CPU cores: {os.cpu_count()}, OpenCV threads: {cv2.getNumThreads()}, "
        f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    measurements = {"bpd_mm": 48, "hc_mm": 175, "ac_mm": 150, "fl_mm": 33, "ofd_mm": 60}
    med, p95 = timed(lambda: compute_all(measurements, ga_days=140), args.repeats * 10)
    print(
        f"formulas: compute_all (12 GA, 5 EFW, 6 centiles)      median {med:.3f} ms  p95 {p95:.3f} ms"
    )
    med, p95 = timed(
        lambda: json.dumps(compute_all(measurements, ga_days=140).to_dict()), args.repeats * 10
    )
    print(
        f"formulas: compute_all + JSON                          median {med:.3f} ms  p95 {p95:.3f} ms"
    )

    worst = 0.0
    for shape in ((256, 320), (540, 800)):
        for plane in ("head", "abdomen", "femur"):
            medians, p95s = [], []
            for seed in range(3):
                params = {"fill": 0.42} if plane != "femur" else {"fill": 0.45, "angle_deg": 15.0}
                frame = make_frame(TAXONOMY[plane], seed=seed, shape=shape, **params)
                med, p95 = timed(frame_pipeline(frame, plane), args.repeats)
                medians.append(med)
                p95s.append(p95)
            worst = max(worst, max(p95s))
            print(
                f"per frame {shape[1]}x{shape[0]} {plane:8s}: FOV + geometry + "
                f"{ {'head': 6, 'abdomen': 6, 'femur': 4}[plane] } criteria  "
                f"median {statistics.median(medians):6.1f} ms  p95 {max(p95s):6.1f} ms"
            )
    print(f"worst p95 per frame: {worst:.1f} ms (target <= 200 ms)")
    if args.phantom_frames:
        phantom_checks(args.phantom_frames)
    return 0


if __name__ == "__main__":
    sys.exit(main())
