"""AC and FL on real FETAL_PLANES_DB images against the multi-centre biometry benchmark's calipers:
``python -m inference.evaluate structures-fp --images DIR [--landmarks DIR] [--split Test]``.

``--images``: the data set's ``Images`` folder (``<Image_name>.png``), which a user downloads from
the data set's record (it is not beside the project). ``--landmarks``: the benchmark's ``FP`` folder
(``Abdomen_<split>.csv``: TAD and APAD end points; ``Femur_<split>.csv``: FL end points; original
image pixels, ``px_to_mm_rate`` mm per pixel). Truth: AC = Ramanujan perimeter of the ellipse with
semi-axes TAD/2 and APAD/2; FL = distance of the two points. The model measures each image as the
pipeline does (field of view estimated from the image) and the report gives the relative errors
(mean / median / 95th percentile, share within 2 %, the images where no measurement came out).
The benchmark's mm scales are ±4 % (see the data README), so errors below that are not resolved.

Prints ONE JSON object. Rows whose image is missing are counted, not measured.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np

from inference.geometry import ramanujan_perimeter

DEFAULT_LANDMARKS = Path(__file__).resolve().parents[2].parent / "shared/data/biometry_landmarks/FP"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m inference.evaluate structures-fp", description=__doc__
    )
    p.add_argument("--images", type=Path, required=True, help="FETAL_PLANES_DB Images folder")
    p.add_argument("--landmarks", type=Path, default=DEFAULT_LANDMARKS)
    p.add_argument("--split", default="Test", help="Test, Train or all (the whole CSV)")
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=int, default=None, help="at most this many rows per plane")
    return p.parse_args(argv)


def _csv(folder: Path, plane: str, split: str) -> list[dict[str, str]]:
    name = f"{plane}.csv" if split == "all" else f"{plane}_{split}.csv"
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"no landmark file {path}")
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def truth_ac_mm(row: dict[str, str]) -> float:
    """AC (mm) from the TAD and APAD end points of a benchmark row."""
    f = {k: float(v) for k, v in row.items() if k.endswith(("_x", "_y")) or k == "px_to_mm_rate"}
    tad = math.dist((f["tad_1_x"], f["tad_1_y"]), (f["tad_2_x"], f["tad_2_y"]))
    apad = math.dist((f["apad_1_x"], f["apad_1_y"]), (f["apad_2_x"], f["apad_2_y"]))
    return ramanujan_perimeter(tad / 2, apad / 2) * f["px_to_mm_rate"]


def truth_fl_mm(row: dict[str, str]) -> float:
    """FL (mm) from the two femur end points of a benchmark row."""
    p0 = (float(row["fl_1_x"]), float(row["fl_1_y"]))
    p1 = (float(row["fl_2_x"]), float(row["fl_2_y"]))
    return math.dist(p0, p1) * float(row["px_to_mm_rate"])


def _summary(errors: list[float]) -> dict:
    if not errors:
        return {"n": 0}
    e = np.abs(np.asarray(errors))
    return {
        "n": len(e),
        "mean_abs_pct": round(float(e.mean()), 2),
        "median_abs_pct": round(float(np.median(e)), 2),
        "p95_abs_pct": round(float(np.percentile(e, 95)), 2),
        "within_2pct": round(float(np.mean(e <= 2.0)), 4),
        "within_5pct": round(float(np.mean(e <= 5.0)), 4),
        "mean_signed_pct": round(float(np.mean(errors)), 2),
    }


def evaluate(
    images: Path,
    landmarks: Path,
    *,
    split: str = "Test",
    weights: Path | None = None,
    threads: int = 1,
    limit: int | None = None,
) -> dict:
    from inference.quality.fov import estimate_field_of_view
    from inference.structures.evidence import abdomen_measurement, femur_measurement
    from inference.structures.predict import VALIDATION, StructurePredictor

    if not images.is_dir():
        raise FileNotFoundError(f"no images folder at {images}")
    predictor = StructurePredictor(weights, device="cpu", threads=threads)
    report: dict = {
        "data": f"FETAL_PLANES_DB images in {images}, benchmark calipers {landmarks} ({split})",
        "model_version": predictor.version,
        "model_validation": VALIDATION,
    }
    for plane, key, truth in (("Abdomen", "ac", truth_ac_mm), ("Femur", "fl", truth_fl_mm)):
        rows = _csv(landmarks, plane, split)[:limit]
        errors: list[float] = []
        missing = failed = 0
        for row in rows:
            path = images / row["image_name"]
            if path.suffix != ".png":
                path = path.with_suffix(".png")
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                missing += 1
                continue
            pixel_mm = float(row["px_to_mm_rate"])
            pred = predictor.predict(image)
            try:
                if key == "ac":
                    fov = estimate_field_of_view(image)
                    value = abdomen_measurement(pred, fov=fov, pixel_size_mm=pixel_mm).ac_mm
                else:
                    value = femur_measurement(pred, pixel_size_mm=pixel_mm).length_mm
            except ValueError:
                failed += 1
                continue
            errors.append(100.0 * (value / truth(row) - 1.0))
        report[key] = {
            **_summary(errors),
            "rows": len(rows),
            "images_missing": missing,
            "no_measurement": failed,
        }
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv or [])
    try:
        report = evaluate(
            args.images,
            args.landmarks,
            split=args.split,
            weights=args.weights,
            threads=args.threads,
            limit=args.limit,
        )
    except FileNotFoundError as exc:
        print(f"structures-fp: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0
