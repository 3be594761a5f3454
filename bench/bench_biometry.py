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

Usage: ``python bench/bench_biometry.py [--repeats N]``
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

from inference.abdomen import measure_abdomen
from inference.biometry import compute_all
from inference.femur import measure_femur
from inference.geometry import Ellipse
from inference.phantom.generator import make_frame
from inference.quality import PlaneEvidence, assess_plane, estimate_field_of_view

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


def frame_pipeline(frame, plane: str) -> Callable[[], object]:
    """FOV from the image + geometry from the mask + all criteria: what runs per frame."""
    mask = frame.masks[plane]
    detections = {
        s: (0.95 if s in frame.masks and frame.masks[s].any() else 0.05)
        for s in STRUCTURES.get(plane, ())
    }
    extra = {k: frame.masks[k] for k in ("thalami", "ribs", "spine") if k in frame.masks}

    def run() -> object:
        fov = estimate_field_of_view(frame.image)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
