"""Train the head "refine" U-Net on crops around the skull: ``python -m inference.train
head-refine --data DIR --init-from inference/weights/head_unet.pt --out DIR``.

Each training sample is a crop of an HC18 frame around its annotated ellipse moved as a first pass
might get it wrong (:func:`inference.head.refine.jittered`), letterboxed to the network size, with
the filled annotation ellipse as target; horizontal / rare vertical flips and the intensity
augmentation of the first-pass training. Same split (subjects, seed), loss, optimiser and
checkpointing as ``inference.head.train``; the export with the best quick validation HC error on
un-jittered crops of the held-out subjects is written as ``head_refine.pt``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from inference.geometry import Ellipse
from inference.head.data import (
    NET_SHAPE,
    annotation_ellipse,
    augment_intensity,
    filled_ellipse_mask,
    letterbox,
    list_hc18,
    read_gray,
    split_subjects,
    standardise,
)
from inference.head.model import build_model
from inference.head.refine import CROP_MARGIN, crop_window, cut, jittered
from inference.head.train import loss_fn, quick_hc_mm, seed_everything

WEIGHTS_NAME = "head_refine.pt"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m inference.train head-refine", description=__doc__)
    p.add_argument("--data", required=True, help="HC18 folder (training_set/ + pixel-size CSV)")
    p.add_argument("--out", default="inference/weights")
    p.add_argument("--checkpoints", default="checkpoints/head-refine")
    p.add_argument("--init-from", default=None, help="start from these head weights (same base)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--base", type=int, default=8)
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pt")
    p.add_argument(
        "--keep",
        choices=["best", "last"],
        default="best",
        help="export the epoch with the best quick validation HC error (selects on the validation "
        "subjects) or the last epoch (no selection)",
    )
    return p.parse_args(argv)


def sample(
    frame: np.ndarray,
    truth: Ellipse,
    rng: np.random.Generator | None,
    net_shape: tuple[int, int] = NET_SHAPE,
) -> tuple[np.ndarray, np.ndarray, float]:
    """One (letterboxed crop 0..255 float32, target coverage 0..1, letterbox scale) pair; with
    ``rng`` the crop window is jittered and the pair augmented, without it the crop is exact."""
    aspect = net_shape[1] / net_shape[0]
    window = crop_window(jittered(truth, rng) if rng is not None else truth, aspect, CROP_MARGIN)
    boxed, s = letterbox(cut(frame, window), net_shape)
    local = (truth.cx - window.x0, truth.cy - window.y0, truth.a, truth.b, truth.angle)
    target = (
        filled_ellipse_mask(
            net_shape,
            (
                (local[0] + 0.5) * s - 0.5,
                (local[1] + 0.5) * s - 0.5,
                local[2] * s,
                local[3] * s,
                local[4],
            ),
        ).astype(np.float32)
        / 255.0
    )
    image = boxed.astype(np.float32)
    if rng is not None:
        if rng.random() < 0.5:
            image, target = image[:, ::-1], target[:, ::-1]
        if rng.random() < 0.15:
            image, target = image[::-1], target[::-1]
        image = augment_intensity(np.ascontiguousarray(image), rng)
    return np.ascontiguousarray(image), np.ascontiguousarray(target), s


def export(model: torch.nn.Module, out_dir: Path, meta: dict) -> Path:
    """Write ``head_refine.pt``: fp32 state_dict, config, network size, crop margin, metadata."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / WEIGHTS_NAME
    torch.save(
        {
            "config": model.config,
            "net_shape": list(NET_SHAPE),
            "crop_margin": CROP_MARGIN,
            "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "meta": meta,
        },
        path,
    )
    return path


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    ckpt_dir, out_dir = Path(args.checkpoints), Path(args.out)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    items = list_hc18(args.data)
    frames = [read_gray(it.image_path) for it in items]
    truths = [Ellipse(*annotation_ellipse(read_gray(it.annotation_path))) for it in items]
    subjects = [it.subject for it in items]
    _train, val_s = split_subjects(subjects, args.val_fraction, args.seed)
    val_set = set(val_s)
    tr_idx = np.array([i for i, s in enumerate(subjects) if s not in val_set])
    va_idx = np.array([i for i, s in enumerate(subjects) if s in val_set])
    print(f"train {len(tr_idx)} images; val {len(va_idx)}", flush=True)
    val_pairs = [sample(frames[i], truths[i], None) for i in va_idx]

    model = build_model({"in_channels": 1, "base": args.base, "depth": 4})
    if args.init_from and not args.resume:
        init = torch.load(args.init_from, map_location="cpu", weights_only=False)
        model.load_state_dict(init["state_dict"])
        args.init_sha256 = hashlib.sha256(Path(args.init_from).read_bytes()).hexdigest()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = math.ceil(len(tr_idx) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=args.epochs * steps, pct_start=0.1
    )
    rng = np.random.default_rng(args.seed)
    start, best, history, seconds = 0, float("inf"), [], 0.0
    last = ckpt_dir / "last.pt"
    if args.resume and last.is_file():
        ck = torch.load(last, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        start, best, history, seconds = ck["epoch"] + 1, ck["best"], ck["history"], ck["seconds"]
    for epoch in range(start, args.epochs):
        t0 = time.time()
        model.train()
        order = rng.permutation(tr_idx)
        losses = []
        for step in range(steps):
            sel = order[step * args.batch : (step + 1) * args.batch]
            pairs = [sample(frames[i], truths[i], rng) for i in sel]
            x = torch.from_numpy(standardise(np.stack([p[0] for p in pairs])))[:, None]
            y = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        model.eval()
        errs = []
        with torch.no_grad():
            for k in range(0, len(val_pairs), 16):
                chunk = val_pairs[k : k + 16]
                x = torch.from_numpy(standardise(np.stack([p[0] for p in chunk])))[:, None]
                prob = torch.sigmoid(model(x))[:, 0].numpy()
                for p, (_, _, s), i in zip(prob, chunk, va_idx[k : k + 16], strict=True):
                    hc = quick_hc_mm(p, s, items[i].pixel_size_mm)
                    errs.append(abs(hc - items[i].hc_mm) if math.isfinite(hc) else items[i].hc_mm)
        dt = time.time() - t0
        seconds += dt
        rec = {
            "epoch": epoch,
            "loss": float(np.mean(losses)),
            "val_hc_mad_mm": float(np.mean(errs)),
            "seconds": round(dt, 1),
            "time": time.strftime("%H:%M:%S", time.gmtime()),
        }
        history.append(rec)
        print(json.dumps(rec), flush=True)
        improved = rec["val_hc_mad_mm"] < best
        best = min(best, rec["val_hc_mad_mm"])
        if (args.keep == "best" and improved) or (args.keep == "last" and epoch == args.epochs - 1):
            export(
                model, out_dir, {"stage": "refine", **rec, "seed": args.seed, "args": vars(args)}
            )
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
                "seconds": seconds,
            },
            ckpt_dir / "last.tmp",
        )
        (ckpt_dir / "last.tmp").replace(last)
    (ckpt_dir / "history.json").write_text(json.dumps(history, indent=1))
    print(json.dumps({"done": True, "best_val_hc_mad_mm": best, "train_seconds": round(seconds)}))
    return 0
