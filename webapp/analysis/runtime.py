"""Per-process state of an analysis worker: the models (loaded once), frame decoding, calibration.

One ``Models`` per worker process, loaded lazily on the first task (never at import: a Celery
prefork parent must not touch torch before forking). The weights paths come from the environment
(``SONOREVIEW_PLANES_WEIGHTS``, ``SONOREVIEW_HEAD_WEIGHTS``, ``SONOREVIEW_STRUCTURES_WEIGHTS``;
default: the shipped files under inference/weights). If a weights file changes on disk (a new training checkpoint), the next task
loads the new bytes and records their hash as a new ``ModelVersion``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from django.conf import settings
from django.db import transaction
from numpy.typing import NDArray

from inference import pipeline
from webapp.analysis.models import ModelVersion
from webapp.exams import dicomio
from webapp.exams.models import Calibration, CalibrationSource, Frame, Instance, UltrasoundRegion
from webapp.exams.services import instance_path

log = logging.getLogger(__name__)

_lock = threading.Lock()
_models: pipeline.Models | None = None
_models_key: tuple | None = None


def weights_paths() -> dict[str, Path]:
    return {
        "planes": Path(
            os.environ.get("SONOREVIEW_PLANES_WEIGHTS") or pipeline.DEFAULT_PLANES_WEIGHTS
        ),
        "head": Path(os.environ.get("SONOREVIEW_HEAD_WEIGHTS") or pipeline.DEFAULT_HEAD_WEIGHTS),
        "structures": Path(
            os.environ.get("SONOREVIEW_STRUCTURES_WEIGHTS") or pipeline.DEFAULT_STRUCTURES_WEIGHTS
        ),
    }


def inference_device() -> str:
    """``SONOREVIEW_INFERENCE_DEVICE``, else ``cuda`` when this process sees a GPU, else ``cpu``."""
    chosen = os.environ.get("SONOREVIEW_INFERENCE_DEVICE")
    if chosen:
        return chosen
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _file_key(path: Path) -> tuple:
    try:
        st = path.stat()
        return (str(path), st.st_size, st.st_mtime_ns)
    except OSError:
        return (str(path), None, None)


def models() -> pipeline.Models:
    """This process's models, loaded on first use and reloaded when a weights file changed."""
    global _models, _models_key
    paths = weights_paths()
    key = tuple(_file_key(p) for p in paths.values())
    with _lock:
        if _models is None or key != _models_key:
            log.info("loading analysis models from %s", {k: str(v) for k, v in paths.items()})
            _models = pipeline.load_models(
                planes_weights=paths["planes"],
                head_weights=paths["head"],
                structures_weights=paths["structures"],
                device=inference_device(),
            )
            _models_key = key
        return _models


class ModelDeactivated(RuntimeError):
    """The loaded weights are a model version an administrator has deactivated."""


def model_version_rows(infos: Sequence[pipeline.ModelInfo]) -> dict[str, ModelVersion]:
    """ModelVersion rows for loaded models (created on first use), by model name.

    Raises ModelDeactivated when a row exists and is inactive: a withdrawn model is never used
    for new findings (the run fails with that reason until the weights are replaced).
    """
    rows = {}
    for info in infos:
        with transaction.atomic():
            row, _ = ModelVersion.objects.get_or_create(
                name=info.name,
                version=info.version[:100],
                weights_sha256=info.weights_sha256,
                defaults={
                    "weights_path": info.weights_path[:500],
                    "task": info.task[:100],
                    "model_card": info.model_card,
                    "model_card_path": info.model_card_path[:500],
                },
            )
        if not row.is_active:
            raise ModelDeactivated(
                f"model {row.name} {row.version} (weights {row.weights_sha256[:12]}) is "
                "deactivated by an administrator; install other weights and retry"
            )
        rows[info.name] = row
    return rows


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


class InstanceFrames:
    """Decodes frames of one stored instance, one at a time, display-ready (uint8 grey or RGB)."""

    def __init__(self, instance: Instance):
        self.instance = instance
        path = instance_path(instance)
        if not path.is_file():
            raise FileNotFoundError(
                f"the stored file of instance {instance.sop_instance_uid} is missing ({path})"
            )
        ranges = list(
            Frame.objects.filter(instance=instance)
            .order_by("number")
            .values_list("byte_ranges", flat=True)
        )
        header = dicomio.pixel_header(pydicom.dcmread(path, stop_before_pixels=True))
        self.reader = dicomio.FrameReader(path, header, ranges, instance.transfer_syntax_uid)

    @property
    def count(self) -> int:
        return self.reader.number_of_frames

    def frame(self, number: int) -> NDArray[np.uint8]:
        """Frame ``number`` (1-based) as (rows, cols) uint8 or (rows, cols, 3) uint8 RGB."""
        return dicomio.display_frame(self.reader, number - 1)

    def fov_box(self) -> tuple[int, int, int, int]:
        """Field-of-view box (row0, row1, col0, col1), end-exclusive, shared by every batch.

        From the first, middle and last frames (the same three whatever the batch), so a frame's
        classification never depends on how the cine was split into batches.
        """
        from inference.planes.preprocess import fov_bbox, to_grey

        picks = sorted({1, (self.count + 1) // 2, self.count})
        frames = []
        for n in picks:
            try:
                frames.append(to_grey(self.frame(n)))
            except Exception:  # a corrupt frame is reported by its own batch
                continue
        if not frames:
            return (0, self.instance.rows, 0, self.instance.columns)
        return fov_bbox(np.max(frames, axis=0))


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def calibrator(instance: Instance, frame_number: int) -> pipeline.Calibrate:
    """The calibration callback for one frame: mm per pixel only for points in one region.

    US regions: ``dicomio.calibration_for_points`` (all points in one cm-calibrated region valid
    for this frame). Pixel Spacing or a user calibration applies to the whole image. Otherwise
    None (px only).
    """
    regions = list(UltrasoundRegion.objects.filter(instance=instance))
    calibration = Calibration.objects.filter(instance=instance).first()

    def calibrate(points: NDArray[np.float64]) -> pipeline.PixelCalibration | None:
        pts = [(float(x), float(y)) for x, y in np.asarray(points).reshape(-1, 2)]
        if regions:
            found = dicomio.calibration_for_points(regions, pts, frame=frame_number)
            if found is not None:
                mx, my, region = found
                return pipeline.PixelCalibration(mx, my, CalibrationSource.US_REGIONS, region.pk)
            if instance.calibration_source == CalibrationSource.US_REGIONS:
                return None  # regions exist but do not hold all points: px only
        if (
            calibration is not None
            and calibration.source in (CalibrationSource.PIXEL_SPACING, CalibrationSource.USER)
            and calibration.mm_per_pixel_x
            and calibration.mm_per_pixel_y
        ):
            return pipeline.PixelCalibration(
                calibration.mm_per_pixel_x, calibration.mm_per_pixel_y, calibration.source, None
            )
        return None

    return calibrate


# --------------------------------------------------------------------------------------------
# Test-only fault injection
# --------------------------------------------------------------------------------------------


def fault_frames(instance: Instance) -> set[int]:
    """Frame numbers of ``instance`` on which the model must raise (tests only).

    Active only when ``settings.ANALYSIS_DEBUG_FAULTS`` is true; the environment variable
    ``SONOREVIEW_ANALYSIS_FAULT_FRAMES`` lists ``<SOP Instance UID>:<frame number>`` items,
    comma-separated.
    """
    if not getattr(settings, "ANALYSIS_DEBUG_FAULTS", False):
        return set()
    spec = os.environ.get("SONOREVIEW_ANALYSIS_FAULT_FRAMES", "")
    out = set()
    for item in spec.split(","):
        uid, _, number = item.strip().rpartition(":")
        if uid == instance.sop_instance_uid and number.isdigit():
            out.add(int(number))
    return out


def debug_hook(name: str) -> Any:
    """Seconds to sleep at ``name`` (tests only, ``SONOREVIEW_ANALYSIS_SLOW_<NAME>``)."""
    if not getattr(settings, "ANALYSIS_DEBUG_FAULTS", False):
        return 0.0
    try:
        return float(os.environ.get(f"SONOREVIEW_ANALYSIS_SLOW_{name.upper()}", "0") or 0)
    except ValueError:
        return 0.0
