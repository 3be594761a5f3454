"""Measurement geometry → value in px and, only when one calibration covers every point, in mm.

Pixel convention (shared with inference/ and the viewer bundle): a point is (x, y) = (column, row)
with pixel centres at integer coordinates. An ellipse is {cx, cy, a, b, angle} (semi-axes in px,
angle in radians from +x towards +y), stored as ``{"type": "ellipse", cx, cy, a, b, angle}``; a
length is ``{"type": "line", "points": [[x, y], [x, y]]}`` (the analysis app's format); ``{p1, p2}``
is accepted as input too.

The calibration rule (DESIGN.md, "Calibration is a safety feature"): the DICOM ultrasound region
that holds *all* points of the measurement (for an ellipse: points sampled on its whole outline),
for that frame; else Pixel Spacing; else a user's explicit calibration. Otherwise the result has
no mm value and says why — never a guessed mm value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.geometry import Ellipse, fit_ellipse_direct, ramanujan_perimeter
from webapp.exams.dicomio import calibration_for_points
from webapp.exams.models import Calibration, CalibrationSource, Instance

ELLIPSE_KINDS = ("HC", "AC")
LENGTH_KINDS = ("BPD", "OFD", "FL", "APAD", "TAD")
OUTLINE_SAMPLES = 72  # points checked against the calibration regions for an ellipse
MAX_EXTENT_FACTOR = 4  # geometry may reach past the image (cut arcs), not absurdly far


class GeometryError(ValueError):
    """Geometry that cannot be measured; ``field`` names the offending input."""

    def __init__(self, message: str, field: str = "geometry_px") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Measured:
    value_px: float
    value_mm: float | None
    geometry_px: dict[str, Any]
    geometry_mm: dict[str, Any] | None
    calibration: dict[str, Any] | None
    px_only_reason: str = ""
    points: list[tuple[float, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "value_px": round(self.value_px, 3),
            "value_mm": None if self.value_mm is None else round(self.value_mm, 2),
            "geometry_px": self.geometry_px,
            "geometry_mm": self.geometry_mm,
            "calibration": self.calibration,
            "px_only_reason": self.px_only_reason,
        }


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise GeometryError(f"{name} must be a number, got {value!r}", f"geometry_px.{name}")
    try:
        number = float(value)
    except ValueError:
        raise GeometryError(
            f"{name} must be a number, got {value!r}", f"geometry_px.{name}"
        ) from None
    if not math.isfinite(number):
        raise GeometryError(f"{name} must be finite, got {value!r}", f"geometry_px.{name}")
    return number


def _point(value: Any, name: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise GeometryError(
            f"{name} must be [x, y] in pixels, got {value!r}", f"geometry_px.{name}"
        )
    return _number(value[0], f"{name}[0]"), _number(value[1], f"{name}[1]")


def shape_for(kind: str) -> str:
    if kind in ELLIPSE_KINDS:
        return "ellipse"
    if kind in LENGTH_KINDS:
        return "length"
    raise GeometryError(
        f"unknown measurement {kind!r}; expected one of {', '.join(ELLIPSE_KINDS + LENGTH_KINDS)}",
        "kind",
    )


def parse_geometry(kind: str, geometry: Any, *, rows: int, columns: int) -> dict[str, Any]:
    """Checked, normalised geometry in px for measurement ``kind`` on a rows×columns image."""
    shape = shape_for(kind)
    if not isinstance(geometry, dict):
        raise GeometryError(f"geometry_px must be an object for a {shape}, got {geometry!r}")
    limit = MAX_EXTENT_FACTOR * max(rows, columns)

    def inside(x: float, y: float, name: str) -> None:
        if not (-0.5 <= x <= columns - 0.5 and -0.5 <= y <= rows - 0.5):
            raise GeometryError(
                f"{name} ({x:.1f}, {y:.1f}) lies outside the {columns}×{rows} image",
                f"geometry_px.{name}",
            )

    if shape == "ellipse":
        cx, cy = _number(geometry.get("cx"), "cx"), _number(geometry.get("cy"), "cy")
        a, b = _number(geometry.get("a"), "a"), _number(geometry.get("b"), "b")
        angle = _number(geometry.get("angle", 0.0), "angle")
        inside(cx, cy, "centre")
        for name, v in (("a", a), ("b", b)):
            if not (0 < v <= limit):
                raise GeometryError(
                    f"semi-axis {name} must be > 0 and ≤ {limit} px, got {v}", f"geometry_px.{name}"
                )
        ellipse = Ellipse.from_axes(cx, cy, a, b, angle)
        return {
            "cx": ellipse.cx,
            "cy": ellipse.cy,
            "a": ellipse.a,
            "b": ellipse.b,
            "angle": ellipse.angle,
        }
    if "points" in geometry:
        points = geometry["points"]
        if not isinstance(points, list | tuple) or len(points) != 2:
            raise GeometryError("points must be two [x, y] caliper ends", "geometry_px.points")
        p1, p2 = _point(points[0], "p1"), _point(points[1], "p2")
    else:
        p1, p2 = _point(geometry.get("p1"), "p1"), _point(geometry.get("p2"), "p2")
    inside(*p1, "p1")
    inside(*p2, "p2")
    if math.dist(p1, p2) < 1e-6:
        raise GeometryError("the two caliper points coincide (length 0)")
    return {"type": "line", "points": [[p1[0], p1[1]], [p2[0], p2[1]]]}


def _points(shape: str, g: dict[str, Any]) -> list[tuple[float, float]]:
    if shape == "ellipse":
        pts = Ellipse(g["cx"], g["cy"], g["a"], g["b"], g["angle"]).points(OUTLINE_SAMPLES)
        return [(float(x), float(y)) for x, y in pts]
    return [tuple(p) for p in g["points"]]  # type: ignore[misc]


def calibration_for(
    instance: Instance, frame_number: int, points: list[tuple[float, float]]
) -> tuple[float, float, dict[str, Any]] | str:
    """(mm/px x, mm/px y, description) for these points, or the reason there is none."""
    source = instance.calibration_source
    if source == CalibrationSource.US_REGIONS:
        regions = list(instance.us_regions.all())
        found = calibration_for_points(regions, points, frame=frame_number)
        if found is None:
            return (
                "px only — no calibration covers these points (they straddle ultrasound regions "
                "or lie outside every calibrated region)"
            )
        sx, sy, region = found
        return (
            sx,
            sy,
            {
                "source": CalibrationSource.US_REGIONS,
                "region_index": region.index,
                "mm_per_px": [sx, sy],
            },
        )
    if source in (CalibrationSource.PIXEL_SPACING, CalibrationSource.USER):
        calibration = Calibration.objects.filter(instance=instance).first()
        if calibration is None or not calibration.mm_per_pixel_x or not calibration.mm_per_pixel_y:
            return "px only — the image's calibration record is missing"
        inside = all(
            -0.5 <= x <= instance.columns - 0.5 and -0.5 <= y <= instance.rows - 0.5
            for x, y in points
        )
        if not inside:
            return "px only — the measurement reaches outside the calibrated image"
        sx, sy = calibration.mm_per_pixel_x, calibration.mm_per_pixel_y
        return sx, sy, {"source": source, "region_index": None, "mm_per_px": [sx, sy]}
    return "px only — no calibration covers these points (the image has no calibration)"


def measure(*, instance: Instance, frame_number: int, kind: str, geometry_px: Any) -> Measured:
    """Value of a measurement in px, and in mm when one calibration holds every point.

    Pure apart from reading the instance's calibration rows. Raises GeometryError for bad input.
    """
    if not isinstance(frame_number, int) or isinstance(frame_number, bool):
        raise GeometryError(f"frame must be a whole number, got {frame_number!r}", "frame")
    if not (1 <= frame_number <= instance.number_of_frames):
        raise GeometryError(
            f"frame {frame_number} does not exist (the image has {instance.number_of_frames})",
            "frame",
        )
    shape = shape_for(kind)
    g = parse_geometry(kind, geometry_px, rows=instance.rows, columns=instance.columns)
    points = _points(shape, g)
    if shape == "ellipse":
        value_px = ramanujan_perimeter(g["a"], g["b"])
    else:
        value_px = math.dist(*g["points"])
    cal = calibration_for(instance, frame_number, points)
    if isinstance(cal, str):
        return Measured(value_px, None, g, None, None, cal, points)
    sx, sy, description = cal
    if shape == "ellipse":
        # An ellipse scaled per axis is still an ellipse; fit it exactly in mm space (handles
        # anisotropic pixels without a special case).
        dense = Ellipse(g["cx"], g["cy"], g["a"], g["b"], g["angle"]).points(360)
        mm = fit_ellipse_direct(dense * np.array([sx, sy]))
        geometry_mm = {
            "type": "ellipse",
            "cx": mm.cx,
            "cy": mm.cy,
            "a": mm.a,
            "b": mm.b,
            "angle": mm.angle,
        }
        value_mm = mm.perimeter
    else:
        (x1, y1), (x2, y2) = g["points"]
        geometry_mm = {"type": "line", "points": [[x1 * sx, y1 * sy], [x2 * sx, y2 * sy]]}
        value_mm = math.dist(*geometry_mm["points"])
    return Measured(value_px, value_mm, g, geometry_mm, description, "", points)
