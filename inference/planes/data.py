"""Plane-classification data: the real sets beside the project, FETAL_PLANES_DB, the phantom.

Every sample carries a ``group`` (the subject, as far as the data set tells) so that splits never
put images of one subject on both sides. Groups:
- HC18: the number before the first underscore (``010_HC.png``, ``010_2HC.png`` → ``hc18:010``);
- FETAL_PLANES_DB images (its own table, the Roboflow normal cases and the Alzubaidi subset are all
  from it): the patient number (``Patient00711_…`` → ``fpdb:711``), shared across those sources;
- Roboflow anomaly cases: the case name without its trailing view letter (``…-20a`` → ``…-20``);
- PSFHS: no subject ids are published; blocks of 10 consecutive file numbers (a heuristic);
- phantom: one group per generated fetus.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.planes import taxonomy
from inference.planes.preprocess import ImageReadError


@dataclass(frozen=True)
class Sample:
    """One labelled image: where it is, its labels and its subject group."""

    path: Path
    plane: str  # taxonomy plane key
    brain_plane: str | None  # taxonomy brain sub-plane key; None = not a brain / unlabelled
    group: str
    source: str


class LabelError(ValueError):
    """A label file that cannot be used (the message names the file, row and problem)."""


# ---------------------------------------------------------------------------------------------
# FETAL_PLANES_DB table: ';'-separated, latin-1, last header "Train " with a trailing space
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FpdbRow:
    image_name: str
    patient: int
    plane: str  # taxonomy key
    brain_plane: str | None
    operator: str
    machine: str
    train: bool


def read_fpdb_table(path: str | Path) -> list[FpdbRow]:
    """Parse FETAL_PLANES_DB_data.csv; LabelError names the file and row on any bad value."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("latin-1")
    except OSError as exc:
        raise LabelError(f"{path}: cannot read ({exc})") from exc
    reader = csv.reader(text.splitlines(), delimiter=";")
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise LabelError(f"{path}: empty file") from None
    need = ["Image_name", "Patient_num", "Plane", "Brain_plane", "Train"]
    missing = [n for n in need if n not in header]
    if missing:
        raise LabelError(f"{path}: not a FETAL_PLANES_DB table, missing columns {missing}")
    ix = {n: header.index(n) for n in header}
    rows = []
    for lineno, rec in enumerate(reader, start=2):
        if not rec or not "".join(rec).strip():
            continue
        try:
            get = lambda n, rec=rec: rec[ix[n]].strip() if ix[n] < len(rec) else ""  # noqa: E731
            p = taxonomy.plane(get("Plane"))
            b = taxonomy.brain_plane(get("Brain_plane")) if p.key == "fetal_brain" else None
            rows.append(
                FpdbRow(
                    image_name=get("Image_name"),
                    patient=int(get("Patient_num")),
                    plane=p.key,
                    brain_plane=b.key if b else None,
                    operator=get("Operator") if "Operator" in ix else "",
                    machine=get("US_Machine") if "US_Machine" in ix else "",
                    train=get("Train") == "1",
                )
            )
        except (taxonomy.UnknownPlaneError, ValueError) as exc:
            raise LabelError(f"{path}, line {lineno}: {exc}") from exc
    return rows


def is_fpdb_table(path: str | Path) -> bool:
    with open(path, "rb") as fh:
        first = fh.readline().decode("latin-1")
    return first.startswith("Image_name;")


def fpdb_samples(root: str | Path, *, split: str = "train") -> list[Sample]:
    """Samples of a FETAL_PLANES_DB download: ``root/FETAL_PLANES_DB_data.csv`` + ``root/Images``.

    split: "train" (Train = 1), "test" (Train = 0) or "all". Missing image files raise
    ImageReadError naming the first few.
    """
    root = Path(root)
    table = root / "FETAL_PLANES_DB_data.csv"
    if not table.is_file():
        raise LabelError(f"{root}: no FETAL_PLANES_DB_data.csv in this folder")
    rows = read_fpdb_table(table)
    if split != "all":
        rows = [r for r in rows if r.train == (split == "train")]
    out, missing = [], []
    for r in rows:
        p = root / "Images" / f"{r.image_name}.png"
        if not p.is_file():
            missing.append(str(p))
        out.append(Sample(p, r.plane, r.brain_plane, f"fpdb:{r.patient}", "fetal_planes_db"))
    if missing:
        raise ImageReadError(
            f"{len(missing)} images named in {table} are missing, e.g. {', '.join(missing[:3])}"
        )
    return out


# ---------------------------------------------------------------------------------------------
# The real sets in ../shared/data
# ---------------------------------------------------------------------------------------------

_PATIENT = re.compile(r"Patient0*(\d+)_")


def hc18_samples(data: Path) -> list[Sample]:
    folder = data / "hc18" / "training_set"
    out = []
    for p in sorted(folder.glob("*HC.png")):
        out.append(
            Sample(p, "fetal_brain", "trans_thalamic", f"hc18:{p.name.split('_')[0]}", "hc18")
        )
    return out


def roboflow_samples(data: Path) -> list[Sample]:
    folder = data / "planes" / "fetal_brain_roboflow"
    out = []
    with open(folder / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            p = taxonomy.plane(row["plane"]).key
            b = taxonomy.brain_plane(row["brain_plane"]) if row["brain_plane"] else None
            m = _PATIENT.match(row["source_image"])
            if m:
                group = f"fpdb:{int(m.group(1))}"
            else:
                group = "rfanom:" + re.sub(r"[a-z]$", "", row["source_image"])
            src = "roboflow_normal" if m else "roboflow_anomaly"
            out.append(Sample(folder / row["filename"], p, b.key if b else None, group, src))
    return out


def alzubaidi_samples(data: Path) -> list[Sample]:
    folder = data / "fetal_head_biometry_alzubaidi_subset" / "images"
    out = []
    for p in sorted(folder.glob("*.png")):
        m = _PATIENT.match(p.name)
        group = f"fpdb:{int(m.group(1))}" if m else f"alz:{p.stem}"
        out.append(Sample(p, "fetal_brain", "trans_ventricular", group, "alzubaidi"))
    return out


def psfhs_samples(data: Path) -> list[Sample]:
    folder = data / "psfhs" / "images"
    return [
        Sample(p, "other", None, f"psfhs:{int(p.stem) // 10}", "psfhs")
        for p in sorted(folder.glob("*.png"))
    ]


def shared_samples(data: str | Path) -> list[Sample]:
    """All labelled plane images found under ``data`` (../shared/data); absent sets are skipped."""
    data = Path(data)
    out: list[Sample] = []
    if (data / "hc18" / "training_set").is_dir():
        out += hc18_samples(data)
    if (data / "planes" / "fetal_brain_roboflow" / "labels.csv").is_file():
        out += roboflow_samples(data)
    if (data / "fetal_head_biometry_alzubaidi_subset" / "images").is_dir():
        out += alzubaidi_samples(data)
    if (data / "psfhs" / "images").is_dir():
        out += psfhs_samples(data)
    return out


def split_by_group(
    samples: Iterable[Sample], *, seed: int, held_out: float = 0.2
) -> tuple[list[Sample], list[Sample]]:
    """Deterministic subject-level split: a group is held out when hash(seed, group) < held_out.

    Every image of a subject lands on the same side, whatever source it came from.
    """
    train, test = [], []
    for s in samples:
        h = hashlib.sha256(f"{seed}:{s.group}".encode()).digest()
        u = int.from_bytes(h[:8], "big") / 2**64
        (test if u < held_out else train).append(s)
    return train, test


def dedupe_copies(samples: Iterable[Sample]) -> list[Sample]:
    """Keep one image per Roboflow source image (its train split holds augmented copies)."""
    seen, out = set(), []
    for s in samples:
        key = s.path.name.split("_png.rf.")[0] if "_png.rf." in s.path.name else str(s.path)
        if key in seen:
            continue
        seen.add(key)
        out.append(s)
    return out


def labels_arrays(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
    """Plane indices (N,) and brain indices (N,) with -1 where there is no sub-plane label."""
    planes = np.array([taxonomy.PLANE_KEYS.index(s.plane) for s in samples], np.int64)
    brains = np.array(
        [taxonomy.BRAIN_PLANE_KEYS.index(s.brain_plane) if s.brain_plane else -1 for s in samples],
        np.int64,
    )
    return planes, brains
