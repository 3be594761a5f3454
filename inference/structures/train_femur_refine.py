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
import json
import math
import time
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
    without a usable strip is replaced by the next one past the step's range (deterministic)."""
    step, batch = step_and_batch
    xs, ys = [], []
    seed = FEMUR_REFINE_SEED_BASE + step * batch
    spare = 1_000_000_000 + seed  # far from every other step's seeds (< 10^9)
    for i in range(batch):
        pair = training_strip(seed + i)
        while pair is None:
            pair = training_strip(spare)
            spare += 1
        xs.append(pair[0])
        ys.append(pair[1])
    return np.stack(xs), np.stack(ys)


def main(argv: list[str] | None = None) -> int:
    from inference.structures.train import _prefetched, _worker_init

    args = parse_args(argv or [])
    pool = None
    if args.workers:
        import multiprocessing

        # spawned before torch is imported here: a fork after torch has started can hang
        pool = multiprocessing.get_context("spawn").Pool(args.workers, initializer=_worker_init)

    import torch
    from torch.nn import functional as F

    from inference.structures.model import StructureUNet
    from inference.structures.train import soft_dice_loss

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    widths = tuple(int(w) for w in args.widths.split(","))
    model = StructureUNet(1, widths).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    args.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    ckpt = args.checkpoint_dir / "last.pt"
    start, history = 0, []
    if args.resume and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start, history = int(state["step"]), list(state.get("history", []))
    log = (args.checkpoint_dir / "train.log").open("a")
    t0 = time.time()
    elapsed0 = history[-1]["elapsed_s"] if history else 0.0
    ahead = (
        _prefetched(pool, start, args.steps, args.batch, _strip_batch) if pool is not None else None
    )
    model.train()
    step, running = start, []
    while step < args.steps:
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = next(ahead) if ahead is not None else _strip_batch((step, args.batch))
        xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        logits = model(xt)
        loss = F.binary_cross_entropy_with_logits(logits, yt) + soft_dice_loss(logits, yt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running.append(loss.detach())
        step += 1
        elapsed = elapsed0 + time.time() - t0
        if step % 25 == 0 or step == args.steps:
            rec = {
                "step": step,
                "loss": float(torch.stack(running).mean()),
                "lr": lr,
                "elapsed_s": elapsed,
            }
            history.append(rec)
            running = []
            log.write(json.dumps(rec) + "\n")
            log.flush()
        stop = args.time_limit_min is not None and elapsed > 60 * args.time_limit_min
        if step % args.checkpoint_every == 0 or step == args.steps or stop:
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "step": step,
                    "history": history,
                },
                ckpt,
            )
        if stop:
            log.write(json.dumps({"stopped": "time limit", "step": step}) + "\n")
            break
    if pool is not None:
        pool.terminate()
    model.eval().cpu()
    meta = {
        "what": "femur second look (strip along the first FL line)",
        "net_shape": list(STRIP_SHAPE),
        "strip_margin": STRIP_MARGIN,
        "steps": step,
        "planned_steps": args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "seed": args.seed,
        "threads": args.threads,
        "device": args.device,
        "workers": args.workers,
        "data": "phantom (synthetic) femur frames, femur_spec seeds "
        f"{FEMUR_REFINE_SEED_BASE}..{FEMUR_REFINE_SEED_BASE + step * args.batch - 1}",
        "train_seconds": round(elapsed0 + time.time() - t0, 1),
        "final_loss": history[-1]["loss"] if history else None,
        "validation": "not validated on real images",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "config": model.config,
            "state_dict": {
                k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()
            },
            "net_shape": list(STRIP_SHAPE),
            "meta": meta,
        },
        args.out,
    )
    log.write(json.dumps({"saved": str(args.out), **meta}) + "\n")
    log.close()
    print(json.dumps(meta, indent=2))
    return 0
