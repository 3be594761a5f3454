"""Shared 2-D geometry for biometry: ellipses, robust ellipse fitting, rasterisation, overlap metrics.

Conventions: points are (x, y) = (column, row) in pixels with pixel centres at integer coordinates;
an :class:`Ellipse` is (cx, cy, a = semi-major, b = semi-minor, angle = direction of the major axis
in radians from +x towards +y, i.e. clockwise on screen because rows grow downwards), all in pixels
unless a name says ``_mm``. Physical sizes assume square pixels of ``pixel_size_mm`` mm; a missing
pixel size gives ``None``, never a guessed mm value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Ellipse",
    "EllipseFit",
    "area_px_to_mm2",
    "boundary_points",
    "conic_to_ellipse",
    "dice",
    "ellipse_from_cv2",
    "fit_ellipse_direct",
    "fit_ellipse_robust",
    "hausdorff",
    "hausdorff_ellipses",
    "px_to_mm",
    "ramanujan_perimeter",
    "rasterize_ellipse",
    "sampson_distance",
]


def ramanujan_perimeter(a: float, b: float) -> float:
    """Ellipse perimeter by Ramanujan's second approximation (relative error < 1e-9 for b/a ≥ 0.5).

    ``a`` and ``b`` are the semi-axes in any one unit; the result is in that unit.
    """
    a, b = float(a), float(b)
    if a < 0 or b < 0:
        raise ValueError("semi-axes must be non-negative")
    if a + b == 0:
        return 0.0
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


@dataclass(frozen=True)
class Ellipse:
    """Ellipse (cx, cy, a, b, angle): centre (px), semi-major a ≥ semi-minor b (px), angle (rad)."""

    cx: float
    cy: float
    a: float
    b: float
    angle: float

    def __post_init__(self) -> None:
        for name in ("cx", "cy", "a", "b", "angle"):  # plain floats, not numpy scalars (JSON-safe)
            object.__setattr__(self, name, float(getattr(self, name)))
        values = (self.cx, self.cy, self.a, self.b, self.angle)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"ellipse parameters must be finite, got {values}")
        if self.b <= 0 or self.a < self.b:
            raise ValueError(f"need a ≥ b > 0, got a={self.a}, b={self.b}")

    @classmethod
    def from_axes(cls, cx: float, cy: float, r1: float, r2: float, angle: float) -> Ellipse:
        """Ellipse with semi-axis ``r1`` along ``angle`` and ``r2`` across it (any order)."""
        r1, r2 = abs(float(r1)), abs(float(r2))
        if r2 > r1:
            r1, r2, angle = r2, r1, angle + math.pi / 2
        return cls(float(cx), float(cy), r1, r2, float(angle % math.pi))

    @property
    def perimeter(self) -> float:
        """Perimeter (px), Ramanujan II."""
        return ramanujan_perimeter(self.a, self.b)

    @property
    def area(self) -> float:
        """Area (px²)."""
        return math.pi * self.a * self.b

    def scaled(self, factor: float, offset: float = 0.0) -> Ellipse:
        """Map to another pixel grid: x' = (x + offset) * factor - offset (offset 0.5 keeps pixel
        centres consistent between grids of different resolution); axes scale by ``factor``."""
        return Ellipse(
            (self.cx + offset) * factor - offset,
            (self.cy + offset) * factor - offset,
            self.a * factor,
            self.b * factor,
            self.angle,
        )

    def points(self, n: int = 360) -> NDArray[np.float64]:
        """(n, 2) points (x, y) evenly spaced in the parametric angle."""
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        c, s = math.cos(self.angle), math.sin(self.angle)
        x, y = self.a * np.cos(t), self.b * np.sin(t)
        return np.stack([self.cx + c * x - s * y, self.cy + s * x + c * y], axis=1)

    def major_axis_endpoints(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """End points (x, y) of the major axis (OFD calipers on a head ellipse)."""
        dx, dy = self.a * math.cos(self.angle), self.a * math.sin(self.angle)
        return (self.cx - dx, self.cy - dy), (self.cx + dx, self.cy + dy)

    def minor_axis_endpoints(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """End points (x, y) of the minor axis (outer-to-outer BPD calipers on a head ellipse)."""
        dx, dy = -self.b * math.sin(self.angle), self.b * math.cos(self.angle)
        return (self.cx - dx, self.cy - dy), (self.cx + dx, self.cy + dy)

    def conic(self) -> NDArray[np.float64]:
        """Conic coefficients (A, B, C, D, E, F) of A x² + B xy + C y² + D x + E y + F = 0."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        a2, b2 = self.a**2, self.b**2
        A = c * c / a2 + s * s / b2
        B = 2 * c * s * (1 / a2 - 1 / b2)
        C = s * s / a2 + c * c / b2
        D = -2 * A * self.cx - B * self.cy
        E = -B * self.cx - 2 * C * self.cy
        F = A * self.cx**2 + B * self.cx * self.cy + C * self.cy**2 - 1
        return np.array([A, B, C, D, E, F])

    def contains(self, points: ArrayLike) -> NDArray[np.bool_]:
        """Whether each (x, y) point lies inside or on the ellipse."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        c, s = math.cos(self.angle), math.sin(self.angle)
        dx, dy = p[:, 0] - self.cx, p[:, 1] - self.cy
        u, v = c * dx + s * dy, -s * dx + c * dy
        return (u / self.a) ** 2 + (v / self.b) ** 2 <= 1.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def ellipse_from_cv2(box: tuple[tuple[float, float], tuple[float, float], float]) -> Ellipse:
    """Convert cv2.fitEllipse's ((cx, cy), (width, height), degrees) to an :class:`Ellipse`."""
    (cx, cy), (w, h), deg = box
    return Ellipse.from_axes(cx, cy, w / 2.0, h / 2.0, math.radians(deg))


def conic_to_ellipse(coeffs: ArrayLike) -> Ellipse:
    """Ellipse of the conic A x² + B xy + C y² + D x + E y + F = 0; ValueError if not an ellipse."""
    A, B, C, D, E, F = (float(v) for v in np.asarray(coeffs, dtype=np.float64).ravel())
    if A + C < 0:  # the conic's overall sign is arbitrary; make its quadratic part positive
        A, B, C, D, E, F = -A, -B, -C, -D, -E, -F
    det = 4 * A * C - B * B
    if not math.isfinite(det) or det <= 0:
        raise ValueError("conic is not an ellipse")
    cx = (B * E - 2 * C * D) / det
    cy = (B * D - 2 * A * E) / det
    f0 = A * cx * cx + B * cx * cy + C * cy * cy + D * cx + E * cy + F  # conic value at centre
    evals, evecs = np.linalg.eigh(np.array([[A, B / 2], [B / 2, C]]))
    if f0 == 0 or np.any(-f0 / evals <= 0):
        raise ValueError("conic is an imaginary or degenerate ellipse")
    axes = np.sqrt(-f0 / evals)  # evals ascending → axes descending: axes[0] is the semi-major
    vx, vy = evecs[:, 0]
    return Ellipse(cx, cy, float(axes[0]), float(axes[1]), math.atan2(vy, vx) % math.pi)


def fit_ellipse_direct(points: ArrayLike) -> Ellipse:
    """Direct least-squares ellipse fit (Fitzgibbon 1999, Halíř–Flusser's stable form).

    ``points``: (N ≥ 5, 2) array of (x, y). Always returns an ellipse when the points allow one;
    raises ValueError otherwise (too few, collinear, degenerate).
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(p) < 5:
        raise ValueError(f"need at least 5 points to fit an ellipse, got {len(p)}")
    if not np.all(np.isfinite(p)):
        raise ValueError("points contain NaN or infinite values")
    mean = p.mean(axis=0)
    scale = float(np.sqrt(((p - mean) ** 2).sum(axis=1).mean() / 2))
    if scale <= 1e-12:
        raise ValueError("points are all the same")
    q = (p - mean) / scale  # normalise for conditioning; undone on the ellipse parameters
    x, y = q[:, 0], q[:, 1]
    d1 = np.stack([x * x, x * y, y * y], axis=1)
    d2 = np.stack([x, y, np.ones_like(x)], axis=1)
    s1, s2, s3 = d1.T @ d1, d1.T @ d2, d2.T @ d2
    try:
        t = -np.linalg.solve(s3, s2.T)
    except np.linalg.LinAlgError as exc:
        raise ValueError("points are degenerate (collinear?)") from exc
    m = s1 + s2 @ t
    m = np.array([m[2] / 2, -m[1], m[0] / 2])  # C1⁻¹ · M
    evals, evecs = np.linalg.eig(m)
    evecs = np.real(evecs)
    cond = 4 * evecs[0] * evecs[2] - evecs[1] ** 2
    ok = np.flatnonzero(cond > 0)
    if len(ok) == 0:
        raise ValueError("no elliptical solution for these points")
    a1 = evecs[:, ok[np.argmin(np.abs(np.real(evals[ok])))]]
    e = conic_to_ellipse(np.concatenate([a1, t @ a1]))
    return Ellipse(
        e.cx * scale + mean[0], e.cy * scale + mean[1], e.a * scale, e.b * scale, e.angle
    )


def sampson_distance(ellipse: Ellipse, points: ArrayLike) -> NDArray[np.float64]:
    """First-order geometric distance (px) of each (x, y) point to the ellipse curve."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    A, B, C, D, E, F = ellipse.conic()
    x, y = p[:, 0], p[:, 1]
    f = A * x * x + B * x * y + C * y * y + D * x + E * y + F
    gx, gy = 2 * A * x + B * y + D, B * x + 2 * C * y + E
    return np.abs(f) / np.maximum(np.hypot(gx, gy), 1e-12)


@dataclass(frozen=True)
class EllipseFit:
    """Result of :func:`fit_ellipse_robust`: the ellipse, which points were inliers, and fit quality."""

    ellipse: Ellipse
    inliers: NDArray[np.bool_]
    inlier_fraction: float
    rms_px: float  # RMS Sampson distance of the inliers


def fit_ellipse_robust(
    points: ArrayLike,
    *,
    threshold: float = 2.0,
    iterations: int = 200,
    min_inlier_fraction: float = 0.5,
    seed: int = 0,
    max_points: int = 600,
) -> EllipseFit:
    """Ellipse fit that outliers and partial arcs cannot bend: RANSAC over direct fits + refit.

    A least-squares fit on all points is tried first; when fewer than 95 % of the points lie within
    ``threshold`` px of it, RANSAC (6-point minimal fits, deterministic ``seed``) picks the
    hypothesis with most inliers (sub-sampled to ``max_points`` for speed; at most ``iterations``
    draws, fewer once a 99 % chance of an all-inlier draw is reached). The consensus set is
    then refitted by least squares, re-selecting inliers three times. Raises ValueError if no fit
    keeps ``min_inlier_fraction`` of the points.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(p) < 6:
        raise ValueError(f"need at least 6 boundary points for a robust fit, got {len(p)}")
    rng = np.random.default_rng(seed)
    best: Ellipse | None = None
    best_count = -1
    try:
        best = fit_ellipse_direct(p)
        best_count = int((sampson_distance(best, p) < threshold).sum())
    except ValueError:
        pass
    if best_count < 0.95 * len(p):
        sample = p if len(p) <= max_points else p[rng.choice(len(p), max_points, replace=False)]
        scale = len(p) / len(sample)
        needed = iterations
        i = 0
        while i < min(iterations, max(needed, 50)):  # ≥ 50 draws: the count estimate is noisy
            i += 1
            try:
                cand = fit_ellipse_direct(sample[rng.choice(len(sample), 6, replace=False)])
            except ValueError:
                continue
            count = int((sampson_distance(cand, sample) < threshold).sum() * scale)
            if count > best_count:
                best, best_count = cand, count
                # adaptive stop: enough draws for a 99 % chance of one all-inlier sample
                w = min(best_count / len(p), 0.999)
                needed = math.ceil(math.log(0.01) / math.log(1 - w**6)) if w > 0 else iterations
    if best is None:
        raise ValueError("no ellipse fits these points")
    inliers = sampson_distance(best, p) < threshold
    for _ in range(3):
        if inliers.sum() < 6:
            break
        try:
            refit = fit_ellipse_direct(p[inliers])
        except ValueError:
            break
        new = sampson_distance(refit, p) < threshold
        if new.sum() < inliers.sum() * 0.9:
            break
        best, inliers = refit, new
    fraction = float(inliers.mean())
    if fraction < min_inlier_fraction:
        raise ValueError(f"only {fraction:.0%} of the boundary fits one ellipse")
    resid = sampson_distance(best, p[inliers])
    return EllipseFit(
        best, inliers, fraction, float(np.sqrt((resid**2).mean())) if len(resid) else 0.0
    )


def boundary_points(
    mask: NDArray, valid: NDArray | None = None, margin: int = 2
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Outer boundary of the largest connected component of a binary ``mask`` (H, W).

    Returns (points (N, 2) as (x, y), keep (N,)): ``keep`` is False for points within ``margin`` px
    of the image edge or of the outside of ``valid`` (the field of view), where the boundary is
    the edge of the picture, not the edge of the object. Empty arrays when the mask is empty.
    """
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    m[m > 0] = 1
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return np.zeros((0, 2)), np.zeros(0, bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    comp = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pts = max(contours, key=len).reshape(-1, 2).astype(np.float64)
    h, w = m.shape
    inside = np.zeros((h, w), np.uint8)
    inside[margin : h - margin, margin : w - margin] = 1
    if valid is not None:
        v = np.asarray(valid, dtype=np.uint8)
        if margin > 0:
            v = cv2.erode(v, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
        inside &= v
    xi, yi = pts[:, 0].astype(int), pts[:, 1].astype(int)
    return pts, inside[yi, xi] > 0


def rasterize_ellipse(shape: tuple[int, int], ellipse: Ellipse, supersample: int = 1) -> NDArray:
    """Filled ellipse on a (H, W) grid: bool mask (pixel centre inside) for ``supersample`` 1,
    else float coverage in [0, 1] from a ``supersample``× finer grid."""
    h, w = int(shape[0]), int(shape[1])
    k = max(1, int(supersample))
    ys = (np.arange(h * k) + 0.5) / k - 0.5
    xs = (np.arange(w * k) + 0.5) / k - 0.5
    c, s = math.cos(ellipse.angle), math.sin(ellipse.angle)
    dx = xs[None, :] - ellipse.cx
    dy = ys[:, None] - ellipse.cy
    u = (c * dx + s * dy) / ellipse.a
    v = (-s * dx + c * dy) / ellipse.b
    inside = u * u + v * v <= 1.0
    if k == 1:
        return inside
    return inside.reshape(h, k, w, k).mean(axis=(1, 3))


def dice(a: NDArray, b: NDArray) -> float:
    """Dice overlap 2|A∩B| / (|A|+|B|) of two binary masks of one shape; 1.0 when both are empty."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def hausdorff(points_a: ArrayLike, points_b: ArrayLike) -> float:
    """Symmetric Hausdorff distance between two (N, 2) point sets (units of the points)."""
    from scipy.spatial import cKDTree

    pa = np.asarray(points_a, np.float64).reshape(-1, 2)
    pb = np.asarray(points_b, np.float64).reshape(-1, 2)
    if len(pa) == 0 or len(pb) == 0:
        raise ValueError("Hausdorff distance needs two non-empty point sets")
    return float(max(cKDTree(pb).query(pa)[0].max(), cKDTree(pa).query(pb)[0].max()))


def hausdorff_ellipses(e1: Ellipse, e2: Ellipse, n: int = 2000) -> float:
    """Hausdorff distance (px) between two ellipse outlines, each densely sampled with ``n`` points."""
    return hausdorff(e1.points(n), e2.points(n))


def px_to_mm(value_px: float | None, pixel_size_mm: float | None) -> float | None:
    """Length in px → mm for square pixels; None when either is None (never a guessed mm value)."""
    if value_px is None or pixel_size_mm is None:
        return None
    return float(value_px) * float(pixel_size_mm)


def area_px_to_mm2(area_px: float | None, pixel_size_mm: float | None) -> float | None:
    """Area in px² → mm²; None when either is None."""
    if area_px is None or pixel_size_mm is None:
        return None
    return float(area_px) * float(pixel_size_mm) ** 2
