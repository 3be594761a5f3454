"""``python -m inference.evaluate planes --images DIR --labels CSV [--out report.json]``.

Measures the plane classifier on a labelled folder. ``--labels`` is either
- a comma-separated CSV with columns ``filename``, ``plane``, ``brain_plane`` (FETAL_PLANES_DB
  spellings: Fetal abdomen, Fetal brain, Fetal femur, Fetal thorax, Maternal cervix, Other;
  Trans-thalamic, Trans-cerebellum, Trans-ventricular, Other; empty or "Not A Brain" for non-brain),
  filenames relative to ``--images``; or
- the FETAL_PLANES_DB table itself (``;``-separated, latin-1), images ``<Image_name>.png`` in
  ``--images``; by default its test rows (Train = 0), ``--split all`` for every row.
Images: PNG, JPEG, TIFF, BMP or DICOM, grey or colour, any size (cropped to the field of view).

Prints one JSON object (n, accuracy, macro_f1, per_class, confusion_matrix, brain_plane_accuracy,
ms_per_image, ...). Any unusable input (missing or unreadable image, unknown class, empty folder or
CSV) stops with a message naming it and exit code 2; nothing is skipped silently.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.planes import taxonomy
from inference.planes.data import LabelError, is_fpdb_table, read_fpdb_table
from inference.planes.metrics import classification_report
from inference.planes.preprocess import ImageReadError, prepare, read_image


class EvaluationInputError(ValueError):
    """Input that makes an evaluation impossible; the message names the file and the reason."""


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    plane: str  # taxonomy key
    brain_plane: str | None  # taxonomy key or None


def read_label_csv(labels: Path, images: Path, *, split: str = "test") -> list[LabelledImage]:
    """Rows of either label format with their image paths; raises EvaluationInputError."""
    if not labels.is_file():
        raise EvaluationInputError(f"{labels}: label file not found")
    rows: list[LabelledImage] = []
    if is_fpdb_table(labels):
        try:
            table = read_fpdb_table(labels)
        except LabelError as exc:
            raise EvaluationInputError(str(exc)) from exc
        if split != "all":
            table = [r for r in table if r.train == (split == "train")]
        rows = [
            LabelledImage(images / f"{r.image_name}.png", r.plane, r.brain_plane) for r in table
        ]
    else:
        with open(labels, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip() for f in reader.fieldnames or []]
            reader.fieldnames = fields
            if "filename" not in fields or "plane" not in fields:
                raise EvaluationInputError(
                    f"{labels}: needs columns filename, plane, brain_plane (found {fields or 'none'})"
                )
            for lineno, rec in enumerate(reader, start=2):
                name = (rec.get("filename") or "").strip()
                if not name:
                    raise EvaluationInputError(f"{labels}, line {lineno}: empty filename")
                try:
                    p = taxonomy.plane(rec.get("plane") or "")
                    b = (
                        taxonomy.brain_plane(rec.get("brain_plane"))
                        if p.key == "fetal_brain"
                        else None
                    )
                except taxonomy.UnknownPlaneError as exc:
                    raise EvaluationInputError(f"{labels}, line {lineno} ({name}): {exc}") from exc
                rows.append(LabelledImage(images / name, p.key, b.key if b else None))
    if not rows:
        raise EvaluationInputError(f"{labels}: no labelled rows")
    missing = [str(r.path) for r in rows if not r.path.is_file()]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise EvaluationInputError(
            f"{len(missing)} image(s) named in {labels} are not in {images}: "
            + ", ".join(missing[:5])
            + more
        )
    return rows


def evaluate(rows: list[LabelledImage], predictor, batch: int = 32) -> dict:
    """Read, classify and score ``rows``; raises EvaluationInputError naming unreadable images."""
    errors, prepared = [], []
    t_read = 0.0
    t_prep = 0.0
    for r in rows:
        t0 = time.perf_counter()
        try:
            img = read_image(r.path)
        except ImageReadError as exc:
            errors.append(str(exc))
            continue
        t1 = time.perf_counter()
        prepared.append(prepare(img, predictor.input_size))
        t_read += t1 - t0
        t_prep += time.perf_counter() - t1
    if errors:
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise EvaluationInputError("unreadable image(s): " + "; ".join(errors[:5]) + more)
    t0 = time.perf_counter()
    pred = predictor.predict_prepared(np.stack(prepared), batch_size=batch)
    t_inf = time.perf_counter() - t0
    n = len(rows)
    y = np.array([taxonomy.PLANE_KEYS.index(r.plane) for r in rows])
    names = [p.fpdb_name for p in taxonomy.PLANES]
    report = classification_report(y, pred.plane_probs.argmax(1), names)
    brain_rows = [i for i, r in enumerate(rows) if r.brain_plane is not None]
    if brain_rows:
        yb = np.array([taxonomy.BRAIN_PLANE_KEYS.index(rows[i].brain_plane) for i in brain_rows])
        pb = pred.brain_probs[brain_rows].argmax(1)
        sub = classification_report(yb, pb, [b.fpdb_name for b in taxonomy.BRAIN_PLANES])
        report["brain_plane_accuracy"] = sub["accuracy"]
        report["brain_plane"] = sub
    else:
        report["brain_plane_accuracy"] = None
    brain = taxonomy.PLANE_KEYS.index("fetal_brain")
    pp = pred.plane_probs.argmax(1)
    report["brain_vs_non_brain_accuracy"] = round(float(((pp == brain) == (y == brain)).mean()), 4)
    report["ms_per_image"] = round((t_prep + t_inf) / n * 1000, 2)
    report["ms_per_image_read"] = round(t_read / n * 1000, 2)
    return report


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m inference.evaluate planes", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--images", type=Path, required=True, help="folder of the images")
    ap.add_argument("--labels", type=Path, required=True, help="label CSV or FETAL_PLANES_DB table")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON report here")
    ap.add_argument(
        "--weights", type=Path, default=None, help="classifier weights (default: shipped)"
    )
    ap.add_argument(
        "--split",
        choices=["test", "train", "all"],
        default="test",
        help="FETAL_PLANES_DB table only: which rows (default test = Train 0)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)

    def fail(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        return 2

    if not args.images.is_dir():
        return fail(f"{args.images}: images folder not found")
    if not any(p.is_file() for p in args.images.rglob("*")):
        return fail(f"{args.images}: images folder is empty")
    try:
        rows = read_label_csv(args.labels, args.images, split=args.split)
    except EvaluationInputError as exc:
        return fail(str(exc))
    import torch

    from inference.planes.model import DEFAULT_WEIGHTS, Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        predictor = Predictor(args.weights or DEFAULT_WEIGHTS)
    except (FileNotFoundError, ValueError) as exc:
        return fail(str(exc))
    try:
        report = evaluate(rows, predictor)
    except EvaluationInputError as exc:
        return fail(str(exc))
    report = {"labels_file": str(args.labels), "images": str(args.images), **report}
    if is_fpdb_table(args.labels):
        report["split"] = args.split
    text = json.dumps(report)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 0
