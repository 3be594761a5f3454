"""Train the head segmentation U-Net on HC18: ``python -m inference.train head --data DIR --out DIR``.

Target: the filled skull ellipse of the HC18 annotation, at the letterboxed network size
(``data.NET_SHAPE``). Split by subject (deterministic), fixed seeds, BCE + soft Dice, AdamW with a
one-cycle schedule. A checkpoint is written after every epoch (``--checkpoints``); ``--resume``
continues from the last one with the same optimiser, schedule and random state. The model with the
best validation HC error (mean absolute difference, mm, of a quick ellipse fit) is exported to
``--out`` as ``head_unet.pt`` with ``head_split.json`` (the subject split) beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from inference.head.data import (
    NET_SHAPE,
    augment,
    load_or_build_cache,
    save_split,
    split_subjects,
    standardise,
)
from inference.head.model import build_model

WEIGHTS_NAME = "head_unet.pt"
SPLIT_NAME = "head_split.json"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m inference.train head", description=__doc__)
    p.add_argument("--data", required=True, help="HC18 folder (training_set/ + pixel-size CSV)")
    p.add_argument("--out", default="inference/weights", help="where the best weights are exported")
    p.add_argument("--checkpoints", default="checkpoints/head", help="per-epoch checkpoints")
    p.add_argument("--cache", default=None, help="pre-resized image cache (.npz)")
    p.add_argument(
        "--net-shape",
        type=int,
        nargs=2,
        default=list(NET_SHAPE),
        metavar=("H", "W"),
        help="network input size (multiples of 16)",
    )
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--base", type=int, default=8, help="U-Net channels at full resolution")
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pt")
    p.add_argument(
        "--init-from",
        default=None,
        help="start from these exported weights (e.g. a model trained at a smaller --net-shape: "
        "the U-Net is fully convolutional, so its weights fit any size); same --base required",
    )
    p.add_argument(
        "--stop-after",
        type=int,
        default=0,
        help="stop after this many epochs in this run (resume later)",
    )
    p.add_argument("--limit-batches", type=int, default=0, help="debug: batches per epoch")
    return p.parse_args(argv)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice (per image, averaged)."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(1, 2, 3))
    denom = prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    dice = (2 * inter + 1.0) / (denom + 1.0)
    return bce + (1 - dice).mean()


def quick_hc_mm(prob: np.ndarray, scale: float, pixel_mm: float) -> float:
    """HC (mm) of cv2.fitEllipse on the largest contour of prob > 0.5; NaN if none."""
    m = (prob > 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return float("nan")
    c = max(contours, key=cv2.contourArea)
    if len(c) < 5:
        return float("nan")
    _, (w, h), _ = cv2.fitEllipse(c)
    a, b = w / 2, h / 2
    hh = (a - b) ** 2 / (a + b) ** 2
    perim = math.pi * (a + b) * (1 + 3 * hh / (10 + math.sqrt(4 - 3 * hh)))
    return perim / scale * pixel_mm


@torch.no_grad()
def validate(model: torch.nn.Module, data: dict, idx: np.ndarray, batch: int) -> dict:
    model.eval()
    dices, errs = [], []
    for start in range(0, len(idx), batch):
        sel = idx[start : start + batch]
        x = torch.from_numpy(standardise(data["images"][sel]))[:, None]
        prob = torch.sigmoid(model(x))[:, 0].numpy()
        tgt = data["masks"][sel].astype(np.float32) / 255.0
        for p, t, i in zip(prob, tgt, sel, strict=True):
            pb, tb = p > 0.5, t > 0.5
            dices.append(2 * (pb & tb).sum() / max(1, pb.sum() + tb.sum()))
            hc = quick_hc_mm(p, data["scale"][i], data["pixel_size_mm"][i])
            errs.append(abs(hc - data["hc_mm"][i]) if math.isfinite(hc) else data["hc_mm"][i])
    return {"val_dice": float(np.mean(dices)), "val_hc_mad_mm": float(np.mean(errs))}


def export(
    model: torch.nn.Module, out_dir: Path, meta: dict, net_shape: tuple[int, int] = NET_SHAPE
) -> Path:
    """Save the fp32 state_dict with its config and training metadata."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / WEIGHTS_NAME
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save(
        {"config": model.config, "net_shape": list(net_shape), "state_dict": state, "meta": meta},
        path,
    )
    return path


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    ckpt_dir, out_dir = Path(args.checkpoints), Path(args.out)
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    net_shape = (int(args.net_shape[0]), int(args.net_shape[1]))
    cache = args.cache or f".data/hc18_{net_shape[0]}x{net_shape[1]}.npz"
    data = load_or_build_cache(args.data, cache, net_shape)
    subjects = [str(s) for s in data["subjects"]]
    train_s, val_s = split_subjects(subjects, args.val_fraction, args.seed)
    val_set = set(val_s)
    tr_idx = np.array([i for i, s in enumerate(subjects) if s not in val_set])
    va_idx = np.array([i for i, s in enumerate(subjects) if s in val_set])
    out_dir.mkdir(parents=True, exist_ok=True)
    save_split(out_dir / SPLIT_NAME, train_s, val_s, args.seed, args.val_fraction)
    print(
        f"train {len(tr_idx)} images / {len(train_s)} subjects; val {len(va_idx)} / {len(val_s)}",
        flush=True,
    )

    model = build_model({"in_channels": 1, "base": args.base, "depth": 4})
    if args.init_from and not args.resume:
        init = torch.load(args.init_from, map_location="cpu", weights_only=False)
        if init["config"].get("base") != args.base:
            raise SystemExit(f"--init-from {args.init_from} has base {init['config'].get('base')}")
        model.load_state_dict(init["state_dict"])
        # the init file is usually overwritten by this run's export: remember which one it was
        args.init_sha256 = hashlib.sha256(Path(args.init_from).read_bytes()).hexdigest()
        print(f"initialised from {args.init_from} (trained at {init.get('net_shape')})", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(tr_idx) / args.batch)
    if args.limit_batches:
        steps_per_epoch = min(steps_per_epoch, args.limit_batches)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch, pct_start=0.1
    )
    rng = np.random.default_rng(args.seed)
    start_epoch, best, history, train_seconds = 0, float("inf"), [], 0.0
    last = ckpt_dir / "last.pt"
    if args.resume and last.is_file():
        ck = torch.load(last, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        if ck["args"]["epochs"] == args.epochs:
            sched.load_state_dict(ck["sched"])
        else:  # schedule re-planned mid-run (e.g. to finish in time): same step, new length
            done = (ck["epoch"] + 1) * steps_per_epoch
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt,
                max_lr=args.lr,
                total_steps=args.epochs * steps_per_epoch,
                pct_start=0.1,
                last_epoch=done - 1,
            )
            print(
                f"schedule re-planned: {ck['args']['epochs']} → {args.epochs} epochs at step {done}",
                flush=True,
            )
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        start_epoch, best, history = ck["epoch"] + 1, ck["best"], ck["history"]
        train_seconds = ck["train_seconds"]
        print(f"resumed after epoch {ck['epoch']} (best val HC MAD {best:.3f} mm)", flush=True)

    end_epoch = args.epochs
    if args.stop_after:
        end_epoch = min(end_epoch, start_epoch + args.stop_after)
    for epoch in range(start_epoch, end_epoch):
        t0 = time.time()
        model.train()
        order = rng.permutation(tr_idx)
        losses = []
        for step in range(steps_per_epoch):
            sel = order[step * args.batch : (step + 1) * args.batch]
            pairs = [augment(data["images"][i], data["masks"][i], rng) for i in sel]
            x = torch.from_numpy(standardise(np.stack([p[0] for p in pairs])))[:, None]
            y = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        metrics = validate(model, data, va_idx, 16)
        dt = time.time() - t0
        train_seconds += dt
        rec = {
            "epoch": epoch,
            "loss": float(np.mean(losses)),
            **metrics,
            "seconds": round(dt, 1),
            "lr": sched.get_last_lr()[0],
            "time": time.strftime("%H:%M:%S", time.gmtime()),
        }
        history.append(rec)
        print(json.dumps(rec), flush=True)
        if metrics["val_hc_mad_mm"] < best:
            best = metrics["val_hc_mad_mm"]
            meta = {
                "epoch": epoch,
                "epochs": args.epochs,
                **metrics,
                "seed": args.seed,
                "train_seconds_so_far": round(train_seconds),
                "args": vars(args),
            }
            export(model, out_dir, meta, net_shape)
            torch.save(model.state_dict(), ckpt_dir / "best_model.pt")
        torch.save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "epoch": epoch,
                "best": best,
                "history": history,
                "train_seconds": train_seconds,
                "args": vars(args),
            },
            ckpt_dir / "last.tmp",
        )
        (ckpt_dir / "last.tmp").replace(last)
    (ckpt_dir / "history.json").write_text(json.dumps(history, indent=1))
    if end_epoch < args.epochs:
        print(
            json.dumps({"stopped_after_epoch": end_epoch - 1, "resume_with": "--resume"}),
            flush=True,
        )
        return 0
    print(
        json.dumps(
            {"done": True, "best_val_hc_mad_mm": best, "train_seconds": round(train_seconds)}
        ),
        flush=True,
    )
    return 0
