"""Synthetic cine sweeps through standard planes, with known optimal / sub-optimal frame ranges.

A sweep imitates a probe moving over one fetus: lead-in tissue, a head segment (vertex →
trans-ventricular → trans-thalamic → trans-cerebellar → base), tissue, a trunk segment (thorax with
the four-chamber heart → upper abdomen → AC plane with stomach and umbilical vein → kidneys →
lower abdomen), tissue, a femur segment (rotating onto and off the long axis), tissue. Each frame
knows its plane label and, per view, whether it is the optimal or a sub-optimal plane (the two-level
labels of the ACOUSLIC-AI challenge). One probe and one pixel size for the whole sweep, as in a
real cine; speckle differs per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from inference.phantom.generator import (
    DEFAULT_SHAPE,
    PhantomFrame,
    femur_length_for_shaft,
    make_frame,
    ramanujan_perimeter,
)

# Fractions of the sweep: (segment, share of frames)
_LAYOUT = (
    ("tissue", 0.05),
    ("head", 0.28),
    ("tissue", 0.05),
    ("trunk", 0.32),
    ("tissue", 0.05),
    ("femur", 0.20),
    ("tissue", 0.05),
)


@dataclass
class PhantomSweep:
    """A synthetic cine: frames (T, H, W) uint8, per-frame labels and truth ranges.

    labels[i] = (plane key, brain sub-plane key or None); view_quality[i] = view key -> "optimal" |
    "sub_optimal"; truth = view key -> {"optimal": [(first, last)], "sub_optimal": [...]} with
    inclusive frame indices; frame_time_ms is the time between frames.
    """

    frames: np.ndarray
    fov: np.ndarray
    pixel_mm: float
    frame_time_ms: float
    labels: list[tuple[str, str | None]] = field(default_factory=list)
    view_quality: list[dict[str, str]] = field(default_factory=list)
    truth: dict[str, dict[str, list[tuple[int, int]]]] = field(default_factory=dict)
    measurements_mm: dict[str, float] = field(default_factory=dict)


def _ranges(flags: list[bool]) -> list[tuple[int, int]]:
    out, start = [], None
    for i, f in enumerate([*flags, False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i - 1))
            start = None
    return out


def _head_frame(s: float, common: dict, seed: int) -> PhantomFrame:
    a = abs(s)
    scale = math.sqrt(max(0.2, 1 - (0.55 * s) ** 2))
    if a >= 0.7:
        sub, extra = "other_brain", {"csp": False, "thalami": False}
    elif s <= -0.25:
        sub, extra = "trans_ventricular", {}
    elif s < 0.25:
        sub, extra = "trans_thalamic", {}
    else:
        sub, extra = "trans_cerebellar", {}
    f = make_frame(
        "fetal_brain", seed=seed, brain_plane=sub, section_scale=scale, **common["head"], **extra
    )
    if sub == "trans_thalamic":
        f.view_quality = {"head_trans_thalamic": "optimal"}
    elif sub in {"trans_ventricular", "trans_cerebellar"}:
        f.view_quality = {f"head_{sub}": "optimal", "head_trans_thalamic": "sub_optimal"}
    else:
        f.view_quality = {}
    return f


def _trunk_frame(s: float, common: dict, seed: int) -> PhantomFrame:
    if s < -0.55:
        f = make_frame("fetal_thorax", seed=seed, **common["trunk"])
        f.view_quality = {"thorax_four_chamber": "optimal"}
        return f
    if s < -0.2:  # high section: stomach, no umbilical vein, oblique
        p = {"stomach": True, "umbilical_vein": False, "kidneys": False, "asymmetry": 0.06}
        vq = {"abdomen_ac": "sub_optimal"}
    elif s < 0.2:
        p = {"stomach": True, "umbilical_vein": True, "kidneys": False, "asymmetry": 0.0}
        vq = {"abdomen_ac": "optimal"}
    elif s < 0.55:  # low section: kidneys appear
        p = {"stomach": True, "umbilical_vein": False, "kidneys": True, "asymmetry": 0.0}
        vq = {"abdomen_ac": "sub_optimal"}
    else:  # below the AC plane: no longer a biometry plane
        p = {"stomach": False, "umbilical_vein": False, "kidneys": True, "asymmetry": 0.0}
        vq = {}
    f = make_frame("fetal_abdomen", seed=seed, **common["trunk"], **p)
    f.view_quality = vq
    return f


def _femur_frame(s: float, common: dict, seed: int) -> PhantomFrame:
    a = abs(s)
    if a < 0.25:
        vis, vq = 1.0, {"femur_fl": "optimal"}
    elif a < 0.6:
        vis, vq = 1.0 - 1.4 * (a - 0.2), {"femur_fl": "sub_optimal"}
    else:
        vis, vq = 0.15, {}
    f = make_frame("fetal_femur", seed=seed, visible_length=vis, **common["femur"])
    if a >= 0.6:
        f.plane = "other"  # a cross-section of the thigh is not a femur plane
    f.view_quality = vq
    return f


def make_sweep(
    *,
    seed: int = 0,
    n_frames: int = 120,
    shape: tuple[int, int] = DEFAULT_SHAPE,
    frame_time_ms: float = 40.0,
    render: bool = True,
    ga_days: float | None = None,
) -> PhantomSweep:
    """A deterministic synthetic sweep of ``n_frames`` (>= 30) frames through head, trunk, femur.

    ``render=False``: labels and truth only (frames all zeros), for tests of the selection logic.
    ``ga_days``: HC, AC and FL are the INTERGROWTH-21st medians at that gestational age (one fetus
    whose measurements date it alike); None: drawn from the seed (HC 150–300 mm, AC and FL in
    proportion, as the plane classifier's training and evaluation sweeps).
    """
    if n_frames < 30:
        raise ValueError(f"a sweep needs at least 30 frames, got {n_frames}")
    rng = np.random.default_rng([seed, 7])
    hc = float(rng.uniform(150, 300))
    ac = hc * float(rng.uniform(0.86, 0.96))
    fl = hc * float(rng.uniform(0.18, 0.21))
    if ga_days is not None:  # drawn above all the same, so every later draw stays as it was
        from inference.biometry.intergrowth import size_mean_sd

        hc, ac, fl = (size_mean_sd(m, ga_days)[0] for m in ("hc", "ac", "fl"))
    ci = float(rng.uniform(0.76, 0.82))
    # one pixel size for the whole cine: the head fills ~ 40 % of the sector
    a_mm = hc / ramanujan_perimeter(1.0, ci)
    probe = make_frame("other", seed=seed, sector_seed=seed)
    fov_area = float(probe.fov.sum())
    pixel_mm = math.sqrt(math.pi * a_mm * a_mm * ci / (0.36 * fov_area))
    anat = int(rng.integers(0, 2**31 - 1))
    common = {
        "head": {
            "hc_mm": hc,
            "cephalic_index": ci,
            "angle": float(rng.uniform(-0.3, 0.3)),
            "pixel_mm": pixel_mm,
            "fill": 0.36,
            "anatomy_seed": anat,
            "sector_seed": seed,
            "shape": shape,
            "render": render,
        },
        "trunk": {
            "ac_mm": ac,
            "roundness": float(rng.uniform(0.88, 0.96)),
            "angle": float(rng.uniform(-0.3, 0.3)),
            "pixel_mm": pixel_mm,
            "fill": 0.36,
            "anatomy_seed": anat + 1,
            "sector_seed": seed,
            "shape": shape,
            "render": render,
        },
        "femur": {
            # the bone drawn as before the FL truth fix (tip to tip, not shaft), so cines look
            # as the plane classifier's evaluations knew them
            # (with ga_days the bone's tip-to-tip length is the median FL itself)
            "fl_mm": fl if ga_days is not None else femur_length_for_shaft(fl, pixel_mm),
            "angle_deg": float(rng.uniform(-20, 20)),
            "pixel_mm": pixel_mm,
            "epiphysis": False,
            "anatomy_seed": anat + 2,
            "sector_seed": seed,
            "shape": shape,
            "render": render,
        },
    }
    counts = [max(2, round(share * n_frames)) for _, share in _LAYOUT]
    counts[3] += n_frames - sum(counts)
    frames: list[PhantomFrame] = []
    i = 0
    for (segment, _), n in zip(_LAYOUT, counts, strict=True):
        ss = np.linspace(-1, 1, n) if n > 1 else np.zeros(1)
        for s in ss:
            fseed = seed * 100_003 + i
            if segment == "head":
                f = _head_frame(float(s), common, fseed)
            elif segment == "trunk":
                f = _trunk_frame(float(s), common, fseed)
            elif segment == "femur":
                f = _femur_frame(float(s), common, fseed)
            else:
                f = make_frame(
                    "other",
                    seed=fseed,
                    anatomy_seed=anat + 3 + len(frames) // 50,
                    sector_seed=seed,
                    pixel_mm=pixel_mm,
                    shape=shape,
                    render=render,
                )
                f.view_quality = {}
            frames.append(f)
            i += 1
    views = sorted({k for f in frames for k in f.view_quality})
    truth = {
        v: {
            level: _ranges([f.view_quality.get(v) == level for f in frames])
            for level in ("optimal", "sub_optimal")
        }
        for v in views
    }
    meas = {}
    for f in frames:
        if f.view_quality and all(q == "optimal" for q in f.view_quality.values()):
            for k, val in f.measurements_mm.items():
                meas.setdefault(k, val)
    return PhantomSweep(
        frames=np.stack([f.image for f in frames]),
        fov=frames[0].fov,
        pixel_mm=pixel_mm,
        frame_time_ms=frame_time_ms,
        labels=[(f.plane, f.brain_plane) for f in frames],
        view_quality=[f.view_quality for f in frames],
        truth=truth,
        measurements_mm=meas,
    )
