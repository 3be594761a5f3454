"""Train the femur second look: ``python -m inference.train femur-refine [options]``.

Each training strip comes from one phantom femur frame (:func:`inference.structures.data.
femur_spec`, seeds ``FEMUR_REFINE_SEED_BASE + step × batch + i``, disjoint from every evaluation
seed): the first pass's FL line is simulated from the visible bone — the extreme projections of
the phantom's femur mask (clipped to the field of view) on the bone's axis — moved by jitter the
size of the structure network's end errors (each end along the axis by N(0, 4 %) of the length,
one frame in ten by up to ±20 %, as an epiphysis taken for shaft or a missed end; across it by
N(0, 1) px), and the strip is laid along that line (:mod:`inference.structures.femur_refine`).
Target: the diaphysis as drawn — the capsule between its tips, anti-aliased, times the field of
view — never the epiphysis beside it.

Loss: binary cross-entropy + soft Dice; AdamW, cosine learning-rate decay over ``--steps``; the
last step's weights are written. ``--device cuda --workers N`` as for the structure network.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from inference.structures.data import femur_spec, to_grey
from inference.structures.femur_refine import (
    STRIP_MARGIN,
    STRIP_SHAPE,
    capsule_target,
    cut_strip,
    standardise,
    strip_window,
)

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "weights" / "femur_refine.pt"
FEMUR_REFINE_SEED_BASE = 0
"""Training seeds (femur_spec's own stream); evaluation uses frame_spec seeds ≥ 500,000,000."""
SPARE_SEED_BASE = 200_000_000
"""Seeds standing in for a frame without a usable strip: step × batch + j past this, clear of
every training seed above and of the validation (5 × 10^8 +) and held-out (10^9 +) seeds, whose
frames share a seed's speckle and sector even where the plane's parameters differ."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m inference.train femur-refine", description=__doc__)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--widths", default="16,32,64,96", help="channels per U-Net level")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--workers", type=int, default=0, help="processes drawing strips (0: none)")
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--checkpoint-dir", type=Path, default=Path("checkpoints/femur-refine"))
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--resume", action="store_true", help="continue from checkpoint-dir/last.pt")
    p.add_argument("--time-limit-min", type=float, default=None, help="stop (and save) after this")
    return p.parse_args(argv)


def _visible_tips(
    mask: NDArray[np.bool_], tip0: tuple[float, float], tip1: tuple[float, float]
) -> tuple[NDArray, NDArray]:
    """The visible bone's two extreme points on the line tip0–tip1 (frame px)."""
    t0, t1 = np.asarray(tip0, float), np.asarray(tip1, float)
    d = (t1 - t0) / np.linalg.norm(t1 - t0)
    ys, xs = np.nonzero(mask)
    proj = (np.stack([xs, ys], 1) - t0) @ d
    return t0 + (proj.min() - 0.5) * d, t0 + (proj.max() + 0.5) * d


def training_strip(seed: int) -> tuple[NDArray[np.float32], NDArray[np.float32]] | None:
    """(input (1, rows, cols), target (1, rows, cols)) for femur frame ``seed``, or None when the
    frame shows no bone (an end far off the sector can leave too little of it)."""
    from inference.phantom.generator import make_frame

    spec = femur_spec(seed)
    frame = make_frame(spec.plane, seed=spec.seed, **spec.params)
    bone = frame.masks.get("femur")
    if bone is None or int(bone.sum()) < 20:
        return None
    tip0, tip1 = frame.landmarks["femur_points"]
    radius = float(frame.landmarks["radius_px"])
    # the drawn bar: an out-of-plane section shows a shorter bar about the same centre
    c = (np.asarray(tip0) + np.asarray(tip1)) / 2
    d = np.asarray(tip1, float) - np.asarray(tip0, float)
    full = float(np.linalg.norm(d))
    d /= full
    vis = float(spec.params.get("visible_length", 1.0))
    half = vis * (full / 2 - radius) + radius
    drawn0, drawn1 = c - half * d, c + half * d
    # the simulated first pass: the visible bone's ends, jittered
    rng = np.random.default_rng([seed, 79])
    a, b = _visible_tips(bone, tuple(drawn0), tuple(drawn1))
    length = float(np.linalg.norm(b - a))
    n = np.array([-d[1], d[0]])
    ends = []
    for p, sign in ((a, -1.0), (b, 1.0)):
        along = rng.normal(0.0, 0.04) if rng.random() > 0.1 else rng.uniform(-0.2, 0.2)
        ends.append(p + sign * along * length * d + rng.normal(0.0, 1.0) * n)
    try:
        window = strip_window(tuple(ends[0]), tuple(ends[1]))
    except ValueError:
        return None
    grey = to_grey(frame.image)
    fov_strip = cut_strip(frame.fov.astype(np.float32), window)
    target = capsule_target(tuple(drawn0), tuple(drawn1), radius, window, np.clip(fov_strip, 0, 1))
    return standardise(cut_strip(grey, window)), target[None]


def _strip_batch(step_and_batch: tuple[int, int]) -> tuple[NDArray, NDArray]:
    """(inputs, targets) of training step ``step``: seeds step × batch … (+ batch − 1); a seed
    without a usable strip is replaced by the step's next spare seed (deterministic)."""
    step, batch = step_and_batch
    xs, ys = [], []
    seed = FEMUR_REFINE_SEED_BASE + step * batch
    spare = SPARE_SEED_BASE + step * batch
    for i in range(batch):
        pair = training_strip(seed + i)
        while pair is None:
            pair = training_strip(spare)
            spare += 1
        xs.append(pair[0])
        ys.append(pair[1])
    return np.stack(xs), np.stack(ys)


def main(argv: list[str] | None = None) -> int:
    from inference.structures.fitting import worker_pool

    args = parse_args(argv or [])
    with worker_pool(args.workers) as pool:  # before torch starts here
        return _train(args, pool)


def _train(args: argparse.Namespace, pool) -> int:  # type: ignore[no-untyped-def]
    from torch.nn import functional as F

    from inference.structures.fitting import (
        fit,
        loop_options,
        prefetched,
        prepare_torch,
        save_weights,
    )
    from inference.structures.model import StructureUNet
    from inference.structures.train import soft_dice_loss

    device = prepare_torch(threads=args.threads, seed=args.seed, device=args.device)
    widths = tuple(int(w) for w in args.widths.split(","))
    model = StructureUNet(1, widths).to(device)

    def batches_from(start: int):  # type: ignore[no-untyped-def]
        if pool is not None:
            made = prefetched(pool, start, args.steps, args.batch, _strip_batch)
        else:
            made = (_strip_batch((k, args.batch)) for k in range(start, args.steps))
        return ((x, y, None) for x, y in made)

    def loss_fn(logits, yt, vt):  # type: ignore[no-untyped-def]
        return F.binary_cross_entropy_with_logits(logits, yt) + soft_dice_loss(logits, yt)

    result = fit(
        model, batches_from=batches_from, loss_fn=loss_fn, device=device, **loop_options(args)
    )
    meta = {
        "what": "femur second look (strip along the first FL line)",
        "net_shape": list(STRIP_SHAPE),
        "strip_margin": STRIP_MARGIN,
        "steps": result.step,
        "planned_steps": args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "seed": args.seed,
        "threads": args.threads,
        "device": args.device,
        "workers": args.workers,
        "data": "phantom (synthetic) femur frames, femur_spec seeds "
        f"{FEMUR_REFINE_SEED_BASE}..{FEMUR_REFINE_SEED_BASE + result.step * args.batch - 1}",
        "train_seconds": result.seconds,
        "final_loss": result.final_loss,
        "validation": "not validated on real images",
    }
    save_weights(model, args.out, meta, args.checkpoint_dir, net_shape=list(STRIP_SHAPE))
    return 0
