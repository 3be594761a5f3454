"""Synthetic fetal ultrasound phantom: single frames with exact masks, landmarks and truth.

Every frame is built from analytic shapes (ellipses, capsules) painted into an echogenicity map,
then turned into an ultrasound-like image: a curvilinear sector field of view (black outside),
acoustic shadowing behind bone (cumulative attenuation along each scan line from the probe apex),
depth attenuation, multiplicative speckle (Rayleigh amplitude of correlated complex noise) and log
compression. Masks, landmarks and measurements come from the same shapes, so they are exact.

Conventions
- Images are (rows, cols) = (y, x) uint8, row 0 nearest the probe.
- Ellipses are (cx, cy, a, b, angle) in pixels: centre column/row, semi-axis a along the direction
  ``angle`` (radians, from the +x / column axis towards the +y / row axis, as OpenCV's ellipse
  angle), semi-axis b perpendicular; a >= b for heads.
- Points are (x, y) = (column, row) in pixels. Pixels are square; ``pixel_mm`` is their size in mm.
- Head: HC = perimeter (Ramanujan) of the outer skull ellipse; OFD = 2a outer-to-outer;
  BPD outer-to-outer = 2b, BPD outer-to-inner = 2b - skull thickness.
- Abdomen: AC = perimeter of the skin-line ellipse. Femur: FL = distance between the ends of the
  ossified diaphysis (the epiphysis is outside it): tip to tip of the capsule drawn for it.

Deterministic: the same arguments and seed give byte-identical frames. Used for tests, demos and
pre-training only; nothing measured on it is reported as accuracy on real images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from inference.planes import taxonomy

DEFAULT_SHAPE = (256, 320)

# Echogenicity levels (before speckle and log compression), 0 = anechoic fluid, 1 = bone.
FLUID, SOFT, LIVER, BRIGHT, BONE = 0.0, 0.34, 0.40, 0.75, 1.0


@dataclass(frozen=True)
class Ellipse:
    """An ellipse in pixels (see module conventions)."""

    cx: float
    cy: float
    a: float
    b: float
    angle: float

    def perimeter(self) -> float:
        """Ramanujan's second approximation of the perimeter, in the ellipse's units."""
        return ramanujan_perimeter(self.a, self.b)

    def scaled(self, mm_per_px: float) -> Ellipse:
        return Ellipse(
            self.cx * mm_per_px,
            self.cy * mm_per_px,
            self.a * mm_per_px,
            self.b * mm_per_px,
            self.angle,
        )

    def as_dict(self) -> dict[str, float]:
        return {"cx": self.cx, "cy": self.cy, "a": self.a, "b": self.b, "angle": self.angle}


def ramanujan_perimeter(a: float, b: float) -> float:
    """Perimeter of an ellipse with semi-axes a, b (Ramanujan II, error < 1e-5 relative here)."""
    h = ((a - b) / (a + b)) ** 2 if a + b > 0 else 0.0
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


@dataclass
class PhantomFrame:
    """One synthetic frame and everything known about it.

    image: (H, W) uint8 grey; fov: (H, W) bool field of view; masks: structure name -> (H, W) bool,
    clipped to the field of view; landmarks: ``Ellipse`` objects (px) and point pairs (px);
    measurements_mm: true HC, BPD_OO (outer-outer), BPD_OI (outer-inner), OFD, AC, FL, CL (mm);
    criteria: Salomon-style truth flags for the frame; fractions: area / length fractions used by
    the ">30 % of the image" criteria; view_quality: view key -> "optimal" / "sub_optimal".
    """

    image: np.ndarray
    plane: str
    brain_plane: str | None
    fov: np.ndarray
    pixel_mm: float
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    landmarks: dict[str, Any] = field(default_factory=dict)
    measurements_mm: dict[str, float] = field(default_factory=dict)
    criteria: dict[str, bool] = field(default_factory=dict)
    fractions: dict[str, float] = field(default_factory=dict)
    view_quality: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Geometry helpers on a pixel grid
# --------------------------------------------------------------------------------------------


class _Scene:
    """Grid, sector geometry and the maps being painted for one frame."""

    def __init__(self, shape: tuple[int, int], rng: np.random.Generator, sector: dict[str, float]):
        self.h, self.w = shape
        self.rng = rng
        yy, xx = np.mgrid[0 : self.h, 0 : self.w].astype(np.float32)
        self.xx, self.yy = xx + 0.0, yy + 0.0
        self.sector = sector
        ax, ay = sector["apex_x"], sector["apex_y"]
        dx, dy = self.xx - ax, self.yy - ay
        self.r = np.hypot(dx, dy)
        self.theta = np.arctan2(dx, dy)  # 0 straight down from the apex
        self.fov = (
            (self.r >= sector["r_min"])
            & (self.r <= sector["r_max"])
            & (np.abs(self.theta) <= sector["half_angle"])
        )
        self.echo = np.full(shape, SOFT, np.float32)
        self.bone = np.zeros(shape, np.float32)  # attenuation per pixel along a scan line
        self.masks: dict[str, np.ndarray] = {}

    # local coordinates of the grid in a frame centred at (cx, cy) rotated by angle
    def local(self, cx: float, cy: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(angle), math.sin(angle)
        dx, dy = self.xx - cx, self.yy - cy
        return dx * c + dy * s, -dx * s + dy * c

    def ellipse(self, e: Ellipse) -> np.ndarray:
        u, v = self.local(e.cx, e.cy, e.angle)
        return (u / max(e.a, 1e-6)) ** 2 + (v / max(e.b, 1e-6)) ** 2 <= 1.0

    def capsule(
        self, p0: tuple[float, float], p1: tuple[float, float], radius: float
    ) -> np.ndarray:
        (x0, y0), (x1, y1) = p0, p1
        vx, vy = x1 - x0, y1 - y0
        L2 = max(vx * vx + vy * vy, 1e-9)
        t = np.clip(((self.xx - x0) * vx + (self.yy - y0) * vy) / L2, 0, 1)
        return np.hypot(self.xx - (x0 + t * vx), self.yy - (y0 + t * vy)) <= radius

    def paint(self, mask: np.ndarray, value: float, texture: float = 0.0) -> None:
        if texture:
            noise = _smooth_noise(self.rng, (self.h, self.w), 6.0)
            self.echo[mask] = np.clip(value * (1 + texture * noise[mask]), 0, 1)
        else:
            self.echo[mask] = value

    def add_bone(self, mask: np.ndarray, attenuation: float) -> None:
        self.bone[mask] = np.maximum(self.bone[mask], attenuation)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    n = rng.standard_normal(shape).astype(np.float32)
    n = cv2.GaussianBlur(n, (0, 0), sigma)
    return n / (n.std() + 1e-6)


def _to_global(cx: float, cy: float, angle: float, u: float, v: float) -> tuple[float, float]:
    c, s = math.cos(angle), math.sin(angle)
    return cx + u * c - v * s, cy + u * s + v * c


def _sector(shape: tuple[int, int], rng: np.random.Generator) -> dict[str, float]:
    h, w = shape
    apex_off = float(rng.uniform(0.04, 0.25) * h)
    r_max = apex_off + h * float(rng.uniform(0.93, 0.99))
    half = float(rng.uniform(math.radians(32), math.radians(42)))
    # keep the sector inside the image width
    half = min(half, math.asin(min(0.99, (w / 2 - 2) / r_max)))
    return {
        "apex_x": w / 2 + float(rng.uniform(-0.02, 0.02) * w),
        "apex_y": -apex_off,
        "r_min": apex_off + float(rng.uniform(2, 8)),
        "r_max": r_max,
        "half_angle": half,
    }


def _fov_width(sc: _Scene) -> float:
    return 2 * sc.sector["r_max"] * math.sin(sc.sector["half_angle"])


# --------------------------------------------------------------------------------------------
# Rendering: shadowing, depth attenuation, speckle, log compression
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _polar_maps(
    shape: tuple[int, int], apex_x: float, apex_y: float, r_max: float, half: float
) -> tuple[np.ndarray, ...]:
    h, w = shape
    nr, nt = 256, 192
    rr = np.linspace(0, r_max, nr, dtype=np.float32)[:, None]
    tt = np.linspace(-half, half, nt, dtype=np.float32)[None, :]
    map_x = (apex_x + rr * np.sin(tt)).astype(np.float32)
    map_y = (apex_y + rr * np.cos(tt)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(xx - apex_x, yy - apex_y)
    t = np.arctan2(xx - apex_x, yy - apex_y)
    back_r = (r / r_max * (nr - 1)).astype(np.float32)
    back_t = ((t + half) / (2 * half) * (nt - 1)).astype(np.float32)
    return map_x, map_y, back_t, back_r, float(r_max / (nr - 1))


def _render(sc: _Scene, style: dict[str, float]) -> np.ndarray:
    rng = sc.rng
    s = sc.sector
    map_x, map_y, back_t, back_r, dr = _polar_maps(
        (sc.h, sc.w), s["apex_x"], s["apex_y"], s["r_max"], s["half_angle"]
    )
    bone_polar = cv2.remap(sc.bone, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)
    trans_polar = np.exp(-np.cumsum(bone_polar, axis=0) * dr).astype(np.float32)
    trans = cv2.remap(trans_polar, back_t, back_r, cv2.INTER_LINEAR, borderValue=1.0)
    # Depth: attenuation partly compensated by time-gain compensation.
    depth = np.clip((sc.r - s["r_min"]) / (s["r_max"] - s["r_min"]), 0, 1)
    gain = np.exp(-style["atten"] * depth)
    echo = cv2.GaussianBlur(sc.echo, (0, 0), 0.8)
    # Speckle: amplitude of low-pass complex Gaussian noise, elongated laterally.
    re = rng.standard_normal((sc.h, sc.w)).astype(np.float32)
    im = rng.standard_normal((sc.h, sc.w)).astype(np.float32)
    sx, sy = style["speckle_x"], style["speckle_y"]
    re = cv2.GaussianBlur(re, (0, 0), sigmaX=sx, sigmaY=sy)
    im = cv2.GaussianBlur(im, (0, 0), sigmaX=sx, sigmaY=sy)
    amp = np.hypot(re, im)
    amp /= float(np.sqrt(np.mean(amp**2))) + 1e-6
    # Echo levels are displayed brightness; speckle, shadowing and depth loss act in dB on top,
    # as a scanner's log compression over a dynamic range of ``dr_db`` would show them.
    db = 20 * np.log10(np.maximum(amp * trans * gain, 1e-6))
    out = echo * style["contrast"] + db / style["dr_db"] + style["offset"]
    # Electronic noise floor: fluid and shadows are dark but, as on a scanner, not exactly 0.
    out = np.maximum(out, style["noise_floor"] * amp)
    out = np.clip(out, 0, 1)
    out[~sc.fov] = 0
    return (out * 255 + 0.5).astype(np.uint8)


def _style(rng: np.random.Generator) -> dict[str, float]:
    return {
        "atten": float(rng.uniform(0.2, 0.9)),
        "speckle_x": float(rng.uniform(0.9, 1.8)),
        "speckle_y": float(rng.uniform(0.5, 1.0)),
        "dr_db": float(rng.uniform(40, 65)),
        "contrast": float(rng.uniform(0.85, 1.15)),
        "offset": float(rng.uniform(-0.05, 0.08)),
        "noise_floor": float(rng.uniform(0.03, 0.07)),
    }


def _background(sc: _Scene, fluid: np.ndarray | None) -> None:
    """Maternal tissue with layers near the probe, amniotic fluid around the fetus."""
    rng = sc.rng
    sc.paint(np.ones((sc.h, sc.w), bool), SOFT * float(rng.uniform(0.8, 1.3)), texture=0.35)
    depth = sc.r - sc.sector["r_min"]
    wall = float(rng.uniform(10, 30))
    sc.paint(depth < wall, 0.45, texture=0.3)
    sc.paint(np.abs(depth - wall) < 1.2, 0.75)
    if fluid is not None:
        sc.paint(fluid & (depth > wall + 2), FLUID * float(rng.uniform(0.6, 1.5)))


# --------------------------------------------------------------------------------------------
# Plane builders: paint anatomy, return landmarks/measurements/criteria
# --------------------------------------------------------------------------------------------


def _place(
    sc: _Scene,
    e_mm: tuple[float, float],
    fill: float,
    angle: float,
    pixel_mm: float | None,
    inside: bool = True,
) -> tuple[float, Ellipse]:
    """Pixel size and an ellipse (semi-axes in mm) in the sector covering ``fill`` of the FOV area.

    With ``inside`` the whole ellipse is kept inside the field of view, zooming out (larger pixels)
    when it cannot fit; otherwise it is centred off-axis so that part of it leaves the sector.
    """
    a_mm, b_mm = e_mm
    fov_area = float(sc.fov.sum())
    fixed = pixel_mm is not None
    if pixel_mm is None:
        pixel_mm = math.sqrt(math.pi * a_mm * b_mm / (fill * fov_area))
    s = sc.sector
    depth = s["r_max"] - s["r_min"]
    ts = np.linspace(0, 2 * math.pi, 48, endpoint=False)
    for attempt in range(60):
        a, b = a_mm / pixel_mm, b_mm / pixel_mm
        r_mid = s["r_min"] + float(sc.rng.uniform(0.4, 0.6)) * depth
        t = float(sc.rng.uniform(-0.3, 0.3)) * s["half_angle"]
        if not inside:
            t = (
                float(sc.rng.choice([-1.0, 1.0]))
                * float(sc.rng.uniform(0.7, 0.9))
                * s["half_angle"]
            )
        cx = s["apex_x"] + r_mid * math.sin(t)
        cy = s["apex_y"] + r_mid * math.cos(t)
        e = Ellipse(cx, cy, a, b, angle)
        c, sn = math.cos(angle), math.sin(angle)
        pts = [
            (
                cx + a * math.cos(q) * c - b * math.sin(q) * sn,
                cy + a * math.cos(q) * sn + b * math.sin(q) * c,
            )
            for q in ts
        ]
        ok = all(_point_in_fov(sc, pt) for pt in pts)
        if ok == inside or (not inside and attempt > 40):
            return pixel_mm, e
        if inside and not fixed and attempt % 6 == 5:
            pixel_mm *= 1.06  # zoom out until it fits
    return pixel_mm, e


def _inside_fraction(sc: _Scene, mask: np.ndarray) -> float:
    n = int(mask.sum())
    return float((mask & sc.fov).sum()) / n if n else 0.0


def _head(sc: _Scene, p: dict[str, Any]) -> dict[str, Any]:
    rng = sc.rng
    hc_mm = p.get("hc_mm") or float(rng.uniform(130, 320))
    ratio = p.get("cephalic_index") or float(rng.uniform(0.74, 0.84))  # BPD/OFD
    a_mm = hc_mm / ramanujan_perimeter(1.0, ratio)
    b_mm = a_mm * ratio
    skull_mm = float(np.interp(hc_mm, [120, 340], [1.8, 3.6]))
    fill = p.get("fill") or float(rng.uniform(0.34, 0.48))
    angle = p.get("angle", float(rng.uniform(-0.45, 0.45)))
    pixel_mm, head = _place(sc, (a_mm, b_mm), fill, angle, p.get("pixel_mm"), p.get("inside", True))
    scale = p.get("section_scale", 1.0)  # off-axis sections of the skull are smaller
    head = Ellipse(head.cx, head.cy, head.a * scale, head.b * scale, head.angle)
    t = skull_mm / pixel_mm
    inner = Ellipse(head.cx, head.cy, head.a - t, head.b - t, head.angle)

    outer_m, inner_m = sc.ellipse(head), sc.ellipse(inner)
    fluid = sc.ellipse(Ellipse(head.cx, head.cy, head.a * 1.35, head.b * 1.45, head.angle))
    _background(sc, fluid)
    sc.paint(outer_m & ~inner_m, BONE * float(rng.uniform(0.8, 1.0)))
    sc.add_bone(outer_m & ~inner_m, float(p.get("skull_atten", 0.02)))
    sc.paint(inner_m, 0.2, texture=0.4)

    sub = p.get("brain_plane", "trans_thalamic")
    asym = float(p.get("asymmetry", 0.0))
    front = 1.0 if p.get("anterior_right", True) else -1.0
    ai, bi = inner.a, inner.b
    u, v = sc.local(inner.cx, inner.cy, inner.angle)
    u = u * front
    vm = asym * bi  # oblique sections move the midline off centre
    masks: dict[str, np.ndarray] = {}

    def oval(cu: float, cv: float, ra: float, rb: float) -> np.ndarray:
        return ((u - cu) / ra) ** 2 + ((v - cv) / rb) ** 2 <= 1

    midline = (np.abs(v - vm - 0.04 * asym * u) < max(0.7, 0.008 * bi)) & (
        (u / ai) ** 2 + (v / bi) ** 2 <= 0.8
    )
    csp = p.get("csp", sub in {"trans_thalamic", "trans_ventricular", "trans_cerebellar"})
    thal = p.get("thalami", sub == "trans_thalamic")
    cereb = p.get("cerebellum", sub == "trans_cerebellar")
    ventr = p.get("ventricles", sub == "trans_ventricular")
    csp_m = (np.abs(v - vm) < 0.055 * bi) & (u > 0.22 * ai) & (u < 0.42 * ai)
    sc.paint(midline & ~csp_m, BRIGHT)
    if csp:
        sc.paint(csp_m, FLUID)
        sc.paint((np.abs(np.abs(v - vm) - 0.07 * bi) < 0.9) & (u > 0.2 * ai) & (u < 0.44 * ai), 0.6)
        masks["cavum_septi_pellucidi"] = csp_m
    if thal:
        k = 1.0 + 2.5 * asym  # asymmetric section: one thalamus larger
        left = oval(-0.05 * ai, vm - 0.19 * bi, 0.2 * ai * k, 0.14 * bi * k)
        right = oval(-0.05 * ai, vm + 0.19 * bi, 0.2 * ai / k, 0.14 * bi / k)
        # hypoechoic thalami with a brighter rim, the third ventricle between them
        rim = oval(-0.05 * ai, vm - 0.19 * bi, 0.23 * ai * k, 0.17 * bi * k) | oval(
            -0.05 * ai, vm + 0.19 * bi, 0.23 * ai / k, 0.17 * bi / k
        )
        sc.paint(rim & ~(left | right), 0.45)
        sc.paint(left | right, 0.05)
        masks["thalami"] = left | right
    if ventr:
        atria = oval(-0.5 * ai, vm + 0.33 * bi, 0.24 * ai, 0.075 * bi) | oval(
            -0.5 * ai, vm - 0.33 * bi, 0.24 * ai, 0.075 * bi
        )
        sc.paint(atria, FLUID)
        plexus = oval(-0.52 * ai, vm + 0.33 * bi, 0.13 * ai, 0.05 * bi) | oval(
            -0.52 * ai, vm - 0.33 * bi, 0.13 * ai, 0.05 * bi
        )
        sc.paint(plexus, 0.8)
        masks["lateral_ventricles"] = atria
    if cereb:
        hemis = oval(-0.58 * ai, vm - 0.13 * bi, 0.13 * ai, 0.14 * bi) | oval(
            -0.58 * ai, vm + 0.13 * bi, 0.13 * ai, 0.14 * bi
        )
        rim = oval(-0.58 * ai, vm - 0.13 * bi, 0.16 * ai, 0.17 * bi) | oval(
            -0.58 * ai, vm + 0.13 * bi, 0.16 * ai, 0.17 * bi
        )
        sc.paint(rim & ~hemis, 0.7)  # bright outline of the "butterfly"
        sc.paint(hemis, 0.12, texture=0.2)
        sc.paint(oval(-0.58 * ai, vm, 0.13 * ai, 0.045 * bi), 0.75)  # vermis
        cm = oval(-0.84 * ai, vm, 0.1 * ai, 0.24 * bi) & ~rim
        sc.paint(cm, FLUID)
        masks["cerebellum"] = hemis
    sc.masks.update(masks)
    sc.masks["head"] = outer_m
    sc.masks["skull"] = outer_m & ~inner_m

    frac = float((outer_m & sc.fov).sum()) / float(sc.fov.sum())
    criteria = {
        "symmetric": abs(asym) < 0.04,
        "thalami_visible": bool(thal),
        "cavum_septi_pellucidi_visible": bool(csp),
        "cerebellum_not_visible": not cereb,
        "head_over_30pct": frac > 0.30,
        "head_inside_fov": _inside_fraction(sc, outer_m) > 0.999,
    }
    hc_px, t_px = head.perimeter(), t
    meas = {
        "HC": hc_px * pixel_mm,
        "OFD": 2 * head.a * pixel_mm,
        "BPD_OO": 2 * head.b * pixel_mm,
        "BPD_OI": (2 * head.b - t_px) * pixel_mm,
    }
    # BPD / OFD caliper end points (outer-outer), along the ellipse axes
    c, s_ = math.cos(head.angle), math.sin(head.angle)
    lm = {
        "head": head,
        "skull_inner": inner,
        "ofd_points": (
            (head.cx - head.a * c, head.cy - head.a * s_),
            (head.cx + head.a * c, head.cy + head.a * s_),
        ),
        "bpd_points": (
            (head.cx + head.b * s_, head.cy - head.b * c),
            (head.cx - head.b * s_, head.cy + head.b * c),
        ),
        "skull_thickness_px": t_px,
    }
    anatomical = all(
        criteria[k]
        for k in (
            "symmetric",
            "thalami_visible",
            "cavum_septi_pellucidi_visible",
            "cerebellum_not_visible",
        )
    )
    return {
        "pixel_mm": pixel_mm,
        "brain_plane": sub,
        "landmarks": lm,
        "measurements": meas,
        "criteria": criteria,
        "fractions": {"head": frac},
        "standard": anatomical if sub == "trans_thalamic" else sub != "other_brain",
    }


def _trunk(sc: _Scene, p: dict[str, Any], kind: str) -> dict[str, Any]:
    """Abdomen (AC plane) or thorax (four-chamber) transverse section of the fetal trunk."""
    rng = sc.rng
    ac_mm = p.get("ac_mm") or float(rng.uniform(110, 330))
    ratio = p.get("roundness") or float(rng.uniform(0.86, 0.98))
    a_mm = ac_mm / ramanujan_perimeter(1.0, ratio)
    b_mm = a_mm * ratio
    fill = p.get("fill") or float(rng.uniform(0.34, 0.48))
    angle = p.get("angle", float(rng.uniform(-0.5, 0.5)))
    pixel_mm, body = _place(sc, (a_mm, b_mm), fill, angle, p.get("pixel_mm"), p.get("inside", True))
    skin = 1.5 / pixel_mm
    inner = Ellipse(body.cx, body.cy, body.a - skin, body.b - skin, body.angle)
    outer_m, inner_m = sc.ellipse(body), sc.ellipse(inner)
    fluid = sc.ellipse(Ellipse(body.cx, body.cy, body.a * 1.4, body.b * 1.4, body.angle))
    _background(sc, fluid)
    sc.paint(outer_m & ~inner_m, 0.55)
    # local frame: v axis points posterior (towards the spine); "left" side sign for situs
    u, v = sc.local(body.cx, body.cy, body.angle)
    ai, bi = inner.a, inner.b
    spine_up = 1.0 if p.get("spine_down", True) else -1.0
    v = v * spine_up
    left = 1.0 if p.get("left_is_plus", True) else -1.0
    u = u * left
    asym = float(p.get("asymmetry", 0.0))
    rot = asym * 2.2  # oblique section: spine and ribs rotate off the midline

    def oval(cu: float, cv: float, ra: float, rb: float, ang: float = 0.0) -> np.ndarray:
        c, s = math.cos(ang), math.sin(ang)
        du, dv = u - cu, v - cv
        return ((du * c + dv * s) / ra) ** 2 + ((-du * s + dv * c) / rb) ** 2 <= 1

    masks: dict[str, np.ndarray] = {}
    sc.paint(inner_m, LIVER if kind == "abdomen" else 0.46, texture=0.3)
    # spine: three ossification centres, posterior
    su, sv = 0.75 * bi * math.sin(rot), 0.75 * bi * math.cos(rot)
    r = 0.065 * bi
    spine = (
        oval(su, sv, r, r)
        | oval(su - 1.6 * r, sv - 1.2 * r, r * 0.8, r * 0.8)
        | oval(su + 1.6 * r, sv - 1.2 * r, r * 0.8, r * 0.8)
    )
    spine &= inner_m
    sc.paint(spine, BONE)
    sc.add_bone(spine, 0.2)
    masks["spine"] = spine
    # ribs: short bright arcs just inside the skin on both sides
    ribs = np.zeros_like(spine)
    n_ribs = 1 if kind == "abdomen" else 3
    for side in (-1.0, 1.0):
        for k in range(n_ribs):
            phi0 = 0.15 + 0.5 * k + side * rot * 0.8
            ang = np.arctan2(v / bi, side * u / ai)
            rr = np.sqrt((u / ai) ** 2 + (v / bi) ** 2)
            arc = (
                (np.abs(rr - 0.9) < 0.04)
                & (ang > phi0 - 0.35)
                & (ang < phi0 + 0.15)
                & (side * u > 0)
            )
            ribs |= arc
    sc.paint(ribs, 0.9)
    sc.add_bone(ribs, 0.12)
    masks["ribs"] = ribs
    crit: dict[str, bool] = {"symmetric": abs(asym) < 0.04}
    if kind == "abdomen":
        stomach_on = p.get("stomach", True)
        uv_on = p.get("umbilical_vein", True)
        kid_on = p.get("kidneys", False)
        if stomach_on:
            st = oval(0.33 * ai, -0.05 * bi, 0.2 * ai, 0.15 * bi, 0.3)
            sc.paint(st, FLUID)
            masks["stomach"] = st
        if uv_on:
            uvm = oval(0.02 * ai, -0.35 * bi, 0.2 * ai, 0.045 * bi, -0.35)
            sc.paint(uvm, FLUID)
            masks["umbilical_vein"] = uvm
        if kid_on:
            kid = oval(-0.3 * ai, 0.5 * bi, 0.13 * ai, 0.1 * bi, 0.4) | oval(
                0.3 * ai, 0.5 * bi, 0.13 * ai, 0.1 * bi, -0.4
            )
            sc.paint(kid, 0.18, texture=0.2)
            sc.paint(
                oval(-0.3 * ai, 0.5 * bi, 0.05 * ai, 0.035 * bi)
                | oval(0.3 * ai, 0.5 * bi, 0.05 * ai, 0.035 * bi),
                0.55,
            )
            masks["kidneys"] = kid
        crit |= {
            "stomach_visible": bool(stomach_on),
            "umbilical_vein_visible": bool(uv_on),
            "kidneys_not_visible": not kid_on,
        }
        name = "abdomen"
    else:
        # four-chamber heart, anterior-left, apex pointing left
        hc_u, hc_v = 0.12 * ai, -0.12 * bi
        ha, hb, hang = 0.42 * ai, 0.33 * bi, -0.7
        heart = oval(hc_u, hc_v, ha, hb, hang)
        sc.paint(heart, 0.5)
        c, s = math.cos(hang), math.sin(hang)
        chambers = np.zeros_like(heart)
        for qa in (-1, 1):
            for qb in (-1, 1):
                cu = hc_u + (qa * 0.45 * ha) * c - (qb * 0.42 * hb) * s
                cv = hc_v + (qa * 0.45 * ha) * s + (qb * 0.42 * hb) * c
                chambers |= oval(cu, cv, 0.36 * ha, 0.33 * hb, hang)
        chambers &= heart
        sc.paint(chambers, FLUID)
        masks["heart"] = heart
        masks["heart_chambers"] = chambers
        crit |= {"four_chambers_visible": True}
        name = "thorax"
    sc.masks.update(masks)
    sc.masks[name] = outer_m
    frac = float((outer_m & sc.fov).sum()) / float(sc.fov.sum())
    crit[f"{name}_over_30pct"] = frac > 0.30
    crit[f"{name}_inside_fov"] = _inside_fraction(sc, outer_m) > 0.999
    meas = {"AC": body.perimeter() * pixel_mm} if kind == "abdomen" else {}
    if kind == "abdomen":
        standard = (
            crit["symmetric"]
            and crit["stomach_visible"]
            and crit["umbilical_vein_visible"]
            and crit["kidneys_not_visible"]
        )
    else:
        standard = crit["symmetric"]
    return {
        "pixel_mm": pixel_mm,
        "landmarks": {name: body},
        "measurements": meas,
        "criteria": crit,
        "fractions": {name: frac},
        "standard": standard,
    }


def _shaft_radius_px(shaft_px: float) -> float:
    """Radius (px) of the capsule drawn for a femoral shaft whose straight part is ``shaft_px``."""
    return max(1.5, 0.045 * shaft_px)


def femur_length_for_shaft(shaft_mm: float, pixel_mm: float) -> float:
    """FL truth (mm, tip to tip) of a femur whose straight shaft is ``shaft_mm`` at ``pixel_mm``:
    pass it as ``fl_mm`` to draw the bone earlier versions drew for ``fl_mm=shaft_mm``."""
    shaft_px = shaft_mm / pixel_mm
    return (shaft_px + 2 * _shaft_radius_px(shaft_px)) * pixel_mm


def _femur(sc: _Scene, p: dict[str, Any]) -> dict[str, Any]:
    """Femur: the ossified diaphysis drawn as a capsule (a straight shaft with rounded ends).

    FL truth is the capsule's tip-to-tip length (shaft + 2 × radius): the ends of the ossified
    diaphysis as drawn. A given ``fl_mm`` is that length; a random one draws the straight part
    (as earlier versions did, so random frames keep their look) and the truth adds the ends.
    """
    rng = sc.rng
    fl_given = p.get("fl_mm")
    shaft_mm = fl_given or float(rng.uniform(18, 75))
    angle_deg = p.get("angle_deg")
    if angle_deg is None:
        angle_deg = float(rng.uniform(-30, 30))
    # Straight shaft / FOV width; the whole bone spans about 9 % more.
    frac_target = p.get("fill") or float(rng.uniform(0.38, 0.6))
    fov_w = _fov_width(sc)
    if p.get("pixel_mm"):
        pixel_mm = float(p["pixel_mm"])
        if fl_given:
            total = fl_given / pixel_mm
            L = total / 1.09 if 0.045 * total / 1.09 >= 1.5 else total - 3.0
        else:
            L = shaft_mm / pixel_mm
    else:
        L = frac_target * fov_w
        pixel_mm = (
            fl_given / (L + 2 * _shaft_radius_px(L))
            if fl_given
            else shaft_mm / (frac_target * fov_w)
        )
    s = sc.sector
    r_mid = s["r_min"] + float(rng.uniform(0.4, 0.55)) * (s["r_max"] - s["r_min"])
    cx = s["apex_x"] + float(rng.uniform(-0.05, 0.05)) * fov_w
    cy = s["apex_y"] + r_mid
    if not p.get("ends_visible", True):
        cx = s["apex_x"] + (0.5 * fov_w) * (1 if rng.random() < 0.5 else -1)  # one end off-screen
    th = math.radians(angle_deg)
    p0 = (cx - L / 2 * math.cos(th), cy - L / 2 * math.sin(th))
    p1 = (cx + L / 2 * math.cos(th), cy + L / 2 * math.sin(th))
    vis = float(p.get("visible_length", 1.0))  # out-of-plane sections show a shorter, faint bar
    thigh = Ellipse(cx, cy, 0.65 * L, 0.26 * L + 4, th)
    fluid = sc.ellipse(Ellipse(cx, cy, 0.8 * L, 0.4 * L + 10, th))
    _background(sc, fluid)
    sc.paint(sc.ellipse(thigh), 0.33, texture=0.3)
    radius = _shaft_radius_px(L)
    q0 = (cx - vis * L / 2 * math.cos(th), cy - vis * L / 2 * math.sin(th))
    q1 = (cx + vis * L / 2 * math.cos(th), cy + vis * L / 2 * math.sin(th))
    bone = sc.capsule(q0, q1, radius)
    sc.paint(bone, BONE * (0.6 + 0.4 * vis))
    sc.add_bone(bone, 0.22 * vis + 0.05)
    masks = {"femur": bone, "thigh": sc.ellipse(thigh)}
    if p.get("epiphysis", bool(rng.random() < 0.5)) and vis >= 0.999:
        ex = p1[0] + 1.8 * radius * math.cos(th)
        ey = p1[1] + 1.8 * radius * math.sin(th)
        epi = sc.capsule((ex, ey), (ex, ey), 1.6 * radius)
        sc.paint(epi & ~bone, 0.1)
        masks["distal_epiphysis"] = epi & ~bone
    sc.masks.update(masks)
    # The tips of the rounded ends, not the centres of the end caps, are the diaphysis ends.
    tip0 = (p0[0] - radius * math.cos(th), p0[1] - radius * math.sin(th))
    tip1 = (p1[0] + radius * math.cos(th), p1[1] + radius * math.sin(th))
    # Both ends visible: the whole bone lies inside the field of view, clear of its edge by
    # FEMUR_EDGE_MARGIN_PX (a bone the sector edge cuts, even by its rounded tip, fails).
    inner = _fov_inner_distance(sc.fov)
    ends_in = bool(
        vis >= 0.999
        and bone.any()
        and float(inner[bone].min()) >= FEMUR_EDGE_MARGIN_PX
        and _point_in_fov(sc, tip0)
        and _point_in_fov(sc, tip1)
    )
    total_px = L + 2 * radius
    # ">30 %": what the picture shows — an out-of-plane section shows only its shorter bar
    frac = (vis * L + 2 * radius) / fov_w
    crit = {
        "both_ends_visible": ends_in,
        "angle_under_45deg": abs(angle_deg) < 45,
        "femur_over_30pct": frac > 0.30,
    }
    return {
        "pixel_mm": pixel_mm,
        "landmarks": {"femur_points": (tip0, tip1), "angle_deg": angle_deg, "radius_px": radius},
        "measurements": {"FL": total_px * pixel_mm} if vis >= 0.999 else {},
        "criteria": crit,
        "fractions": {"femur": frac},
        "standard": ends_in and vis >= 0.999,
    }


FEMUR_EDGE_MARGIN_PX = 3.0
"""Clearance (px) between every bone pixel and the field-of-view edge for "both ends visible"."""


def _fov_inner_distance(fov: np.ndarray) -> np.ndarray:
    """Distance (px) of every pixel to the nearest pixel outside the field of view or the frame."""
    f = np.pad(fov.astype(np.uint8), 1)
    return cv2.distanceTransform(f, cv2.DIST_L2, 5)[1:-1, 1:-1]


def _point_in_fov(sc: _Scene, pt: tuple[float, float]) -> bool:
    x, y = pt
    s = sc.sector
    r = math.hypot(x - s["apex_x"], y - s["apex_y"])
    t = math.atan2(x - s["apex_x"], y - s["apex_y"])
    return s["r_min"] + 2 <= r <= s["r_max"] - 2 and abs(t) <= s["half_angle"] - 0.02


def _cervix(sc: _Scene, p: dict[str, Any]) -> dict[str, Any]:
    rng = sc.rng
    cl_mm = p.get("cl_mm") or float(rng.uniform(25, 45))
    fov_w = _fov_width(sc)
    pixel_mm = p.get("pixel_mm") or cl_mm / (float(rng.uniform(0.45, 0.65)) * fov_w)
    L = cl_mm / pixel_mm
    s = sc.sector
    cx = s["apex_x"] + float(rng.uniform(-0.05, 0.05)) * fov_w
    cy = s["apex_y"] + s["r_min"] + float(rng.uniform(0.35, 0.55)) * (s["r_max"] - s["r_min"])
    th = float(rng.uniform(-0.5, 0.5))
    p0 = (cx - L / 2 * math.cos(th), cy - L / 2 * math.sin(th))  # internal os
    p1 = (cx + L / 2 * math.cos(th), cy + L / 2 * math.sin(th))  # external os
    _background(sc, None)
    # bladder above, anechoic
    sc.paint(sc.ellipse(Ellipse(cx - 0.3 * L, cy - 0.55 * L, 0.5 * L, 0.22 * L, th)), FLUID)
    body = sc.capsule(p0, p1, 0.38 * L)
    sc.paint(body, 0.45, texture=0.3)
    mucosa = sc.capsule(p0, p1, 0.07 * L)
    sc.paint(mucosa, 0.18)
    canal = sc.capsule(p0, p1, 0.9)
    sc.paint(canal, 0.85)
    sc.masks.update({"cervix": body, "cervical_canal": mucosa})
    return {
        "pixel_mm": pixel_mm,
        "landmarks": {"cervical_length_points": (p0, p1)},
        "measurements": {"CL": L * pixel_mm},
        "criteria": {},
        "fractions": {},
        "standard": True,
    }


def _other(sc: _Scene, p: dict[str, Any]) -> dict[str, Any]:
    """Non-standard views: placenta, fluid, limb fragments, soft-tissue blobs."""
    rng = sc.rng
    pixel_mm = p.get("pixel_mm") or float(rng.uniform(0.15, 0.5))
    _background(sc, None)
    s = sc.sector
    for _ in range(int(rng.integers(2, 6))):
        r = s["r_min"] + float(rng.uniform(0.2, 0.9)) * (s["r_max"] - s["r_min"])
        t = float(rng.uniform(-0.8, 0.8)) * s["half_angle"]
        cx, cy = s["apex_x"] + r * math.sin(t), s["apex_y"] + r * math.cos(t)
        e = Ellipse(
            cx,
            cy,
            float(rng.uniform(10, 70)),
            float(rng.uniform(6, 40)),
            float(rng.uniform(0, math.pi)),
        )
        sc.paint(sc.ellipse(e), float(rng.choice([FLUID, 0.2, 0.45, 0.6])), texture=0.3)
    if rng.random() < 0.6:  # placenta band with its basal plate
        d0 = float(rng.uniform(0.1, 0.6)) * (s["r_max"] - s["r_min"]) + s["r_min"]
        band = (sc.r > d0) & (sc.r < d0 + float(rng.uniform(15, 45)))
        sc.paint(band, 0.55, texture=0.25)
    for _ in range(int(rng.integers(0, 3))):  # limb fragments with shadows
        x0, y0 = float(rng.uniform(0.25, 0.75) * sc.w), float(rng.uniform(0.3, 0.8) * sc.h)
        ang = float(rng.uniform(0, math.pi))
        ln = float(rng.uniform(8, 40))
        seg = sc.capsule(
            (x0, y0), (x0 + ln * math.cos(ang), y0 + ln * math.sin(ang)), float(rng.uniform(1.2, 3))
        )
        sc.paint(seg, BONE * 0.9)
        sc.add_bone(seg, 0.4)
    if rng.random() < 0.3:  # an off-axis, structureless section of the head: not a standard plane
        e = Ellipse(
            s["apex_x"],
            s["apex_y"] + 0.55 * s["r_max"],
            float(rng.uniform(25, 60)),
            float(rng.uniform(20, 45)),
            float(rng.uniform(0, math.pi)),
        )
        ring = sc.ellipse(e) & ~sc.ellipse(Ellipse(e.cx, e.cy, e.a - 3, e.b - 3, e.angle))
        sc.paint(ring, 0.8)
    return {
        "pixel_mm": pixel_mm,
        "landmarks": {},
        "measurements": {},
        "criteria": {},
        "fractions": {},
        "standard": True,
    }


_BUILDERS = {
    "fetal_brain": _head,
    "fetal_abdomen": lambda sc, p: _trunk(sc, p, "abdomen"),
    "fetal_thorax": lambda sc, p: _trunk(sc, p, "thorax"),
    "fetal_femur": _femur,
    "maternal_cervix": _cervix,
    "other": _other,
}

_VIEW_OF = {
    ("fetal_brain", "trans_thalamic"): "head_trans_thalamic",
    ("fetal_brain", "trans_ventricular"): "head_trans_ventricular",
    ("fetal_brain", "trans_cerebellar"): "head_trans_cerebellar",
    ("fetal_abdomen", None): "abdomen_ac",
    ("fetal_femur", None): "femur_fl",
    ("fetal_thorax", None): "thorax_four_chamber",
    ("maternal_cervix", None): "maternal_cervix",
}


def make_frame(
    plane: str,
    *,
    seed: int = 0,
    brain_plane: str | None = None,
    shape: tuple[int, int] = DEFAULT_SHAPE,
    anatomy_seed: int | None = None,
    sector_seed: int | None = None,
    render: bool = True,
    **params: Any,
) -> PhantomFrame:
    """One synthetic frame of ``plane`` (taxonomy key or FETAL_PLANES_DB name).

    ``seed`` drives everything random; ``anatomy_seed`` / ``sector_seed`` (default: ``seed``) fix the
    fetus and the probe geometry separately, so a cine can keep them while speckle changes.
    Keyword parameters override random choices and build frames that pass or fail each criterion:
    head: hc_mm, cephalic_index, fill (fraction of FOV area), angle (rad), pixel_mm, asymmetry
    (0 = symmetric, >= 0.04 fails), thalami, csp, cerebellum, ventricles (bool), section_scale;
    abdomen/thorax: ac_mm, roundness, fill, angle, asymmetry, stomach, umbilical_vein, kidneys;
    femur: fl_mm, angle_deg (from horizontal), fill (straight shaft / FOV width; the whole bone spans ~9 % more), ends_visible, epiphysis,
    visible_length (1 = whole diaphysis in plane); cervix: cl_mm.
    ``render=False`` skips the ultrasound rendering (image all zeros): truth only, much faster.
    """
    key = taxonomy.plane(plane).key
    if key == "fetal_brain":
        bp = taxonomy.brain_plane(brain_plane or "Trans-thalamic")
        params["brain_plane"] = bp.key if bp else "trans_thalamic"
    rng_sector = np.random.default_rng([sector_seed if sector_seed is not None else seed, 1])
    sector = _sector(shape, rng_sector)
    style = _style(rng_sector)
    sc = _Scene(
        shape,
        np.random.default_rng([anatomy_seed if anatomy_seed is not None else seed, 2]),
        sector,
    )
    info = _BUILDERS[key](sc, params)
    sc.rng = np.random.default_rng([seed, 3])  # speckle differs per frame
    image = _render(sc, style) if render else np.zeros(shape, np.uint8)
    sub = info.get("brain_plane") if key == "fetal_brain" else None
    masks = {k: m & sc.fov for k, m in sc.masks.items()}
    view_key = _VIEW_OF.get((key, sub))
    vq: dict[str, str] = {}
    if view_key is not None:
        vq[view_key] = "optimal" if info["standard"] else "sub_optimal"
    return PhantomFrame(
        image=image,
        plane=key,
        brain_plane=sub,
        fov=sc.fov.copy(),
        pixel_mm=float(info["pixel_mm"]),
        masks=masks,
        landmarks=info["landmarks"],
        measurements_mm=info["measurements"],
        criteria=info["criteria"],
        fractions=info["fractions"],
        view_quality=vq,
        params={k: v for k, v in params.items()} | {"sector": sector, "style": style},
    )
