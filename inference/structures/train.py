"""Train the structure U-Net: ``python -m inference.train structures [options]``.

Phantom frames are generated per step from their seeds (≈ 10 ms a frame, a few per cent of a
training step on one CPU thread), so every step sees new frames and no cache is needed; seeds
``TRAIN_SEED_BASE + step × batch + i`` never meet the evaluation's held-out seeds. ``--folder``
trains (or fine-tunes, with ``--init``) on a user's labelled PNGs instead (see
:func:`inference.structures.data.load_folder`). ``--fp-images`` / ``--fp-landmarks`` put
FETAL_PLANES_DB images with the multi-centre biometry benchmark's calipers (its Train split) into
each batch (``--fp-share`` of it) as approximate abdomen / femur masks
(:func:`inference.structures.data.fp_masks`); the channels such an image does not label are left
out of its loss.

Loss: binary cross-entropy + soft Dice per channel (channels whose structure is absent from the
whole batch add only the cross-entropy). AdamW, cosine learning-rate decay over ``--steps``.
The last step's weights are written (no selection on any evaluation set); a checkpoint every
``--checkpoint-every`` steps allows ``--resume``.

``--device cuda`` trains on a GPU; ``--workers N`` then draws phantom batches in N spawned
processes ahead of the network (frame generation, not the network, bounds a GPU step). Workers
draw exactly the seeds the single-process loop would, so a run's data does not depend on N.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from inference.structures.data import CLASSES, NET_SHAPE, TRAIN_SEED_BASE, training_pair

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "weights" / "structures_unet.pt"
VALIDATION_SEED_BASE = 500_000_000  # monitoring only; the evaluation's held-out set is elsewhere


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m inference.train structures", description=__doc__)
    p.add_argument("--steps", type=int, default=2400)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--widths", default="16,32,64,128,192", help="channels per U-Net level")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument(
        "--workers", type=int, default=0, help="processes drawing phantom batches (0: none)"
    )
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--checkpoint-dir", type=Path, default=Path("checkpoints/structures"))
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--resume", action="store_true", help="continue from checkpoint-dir/last.pt")
    p.add_argument("--init", type=Path, default=None, help="start from these weights (fine-tune)")
    p.add_argument("--folder", default=None, help="train on <name>.png + <name>_mask.png pairs")
    p.add_argument("--fp-images", default=None, help="FETAL_PLANES_DB Images folder")
    p.add_argument("--fp-landmarks", default=None, help="the benchmark's FP caliper folder")
    p.add_argument("--fp-share", type=float, default=0.5, help="share of each batch from FP")
    p.add_argument("--time-limit-min", type=float, default=None, help="stop (and save) after this")
    return p.parse_args(argv)


def soft_dice_loss(logits, target, valid=None):  # type: ignore[no-untyped-def]
    """1 − soft Dice per channel over the batch, averaged over channels present in the batch.

    ``valid`` (N, C) bool: only those (image, channel) pairs count (None: all)."""
    import torch

    prob = torch.sigmoid(logits)
    if valid is not None:
        w = valid[:, :, None, None].to(prob.dtype)
        prob, target = prob * w, target * w
    dims = (0, 2, 3)
    inter = (prob * target).sum(dims)
    denom = prob.sum(dims) + target.sum(dims)
    present = target.sum(dims) > 0
    dice = (2 * inter + 1.0) / (denom + 1.0)
    if not bool(present.any()):
        return logits.new_zeros(())
    return (1 - dice[present]).mean()


def _batch(
    step: int,
    batch: int,
    folder_pairs: list | None,
    rng: np.random.Generator,
    fp: list | None = None,
    fp_share: float = 0.0,
):
    """(inputs, targets, valid (N, C) or None when every channel of every image is labelled)."""
    valid = None
    if folder_pairs is None:
        n_fp = round(fp_share * batch) if fp else 0
        seeds = [TRAIN_SEED_BASE + step * batch + i for i in range(batch - n_fp)]
        pairs = [training_pair(s) for s in seeds]
        if n_fp:
            from inference.structures.data import fp_pair

            extra = [fp_pair(*fp[int(i)]) for i in rng.integers(0, len(fp), n_fp)]
            pairs += [(x, y) for x, y, _ in extra]
            valid = np.ones((batch, len(CLASSES)), bool)
            valid[batch - n_fp :] = np.stack([v for _, _, v in extra])
    else:
        from inference.structures.data import folder_pair

        idx = rng.integers(0, len(folder_pairs), batch)
        pairs = [folder_pair(*folder_pairs[int(i)]) for i in idx]
    x = np.stack([p[0] for p in pairs])
    y = np.stack([p[1] for p in pairs])
    return x, y, valid


def _phantom_batch(step_and_batch: tuple[int, int]) -> tuple[NDArray, NDArray]:
    """(inputs, targets) of training step ``step`` (phantom seeds only; run in a worker)."""
    step, batch = step_and_batch
    pairs = [training_pair(TRAIN_SEED_BASE + step * batch + i) for i in range(batch)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv or [])
    if args.workers and (args.folder or args.fp_images):
        raise SystemExit(
            "--workers draws phantom frames only; leave it out with --folder/--fp-images"
        )
    from inference.structures.fitting import worker_pool

    with worker_pool(args.workers) as pool:  # before torch starts here
        return _train(args, pool)


def _train(args: argparse.Namespace, pool) -> int:  # type: ignore[no-untyped-def]
    import torch
    from torch.nn import functional as F

    from inference.structures.fitting import (
        fit,
        loop_options,
        prefetched,
        prepare_torch,
        save_weights,
    )
    from inference.structures.model import StructureUNet

    device = prepare_torch(threads=args.threads, seed=args.seed, device=args.device)
    widths = tuple(int(w) for w in args.widths.split(","))
    model = StructureUNet(len(CLASSES), widths)
    if args.init is not None:
        blob = torch.load(args.init, map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    model.to(device)
    folder_pairs = None
    if args.folder:
        from inference.structures.data import load_folder

        folder_pairs = load_folder(args.folder)
    fp = None
    if args.fp_images:
        from inference.structures.data import fp_rows

        fp = fp_rows(args.fp_images, args.fp_landmarks or "", "Train")

    def batches_from(start: int):  # type: ignore[no-untyped-def]
        if pool is not None:
            return (
                (x, y, None)
                for x, y in prefetched(pool, start, args.steps, args.batch, _phantom_batch)
            )
        # a resumed run draws its folder / benchmark images from a stream of its own
        rng = np.random.default_rng(args.seed if start == 0 else [args.seed, start])
        return (
            _batch(k, args.batch, folder_pairs, rng, fp, args.fp_share)
            for k in range(start, args.steps)
        )

    def loss_fn(logits, yt, vt):  # type: ignore[no-untyped-def]
        if vt is None:
            return F.binary_cross_entropy_with_logits(logits, yt) + soft_dice_loss(logits, yt)
        # unlabelled channels of an image are left out of its loss
        w = vt[:, :, None, None].expand_as(yt).float()
        bce = F.binary_cross_entropy_with_logits(logits, yt, weight=w, reduction="sum")
        return bce / w.sum().clamp(min=1.0) + soft_dice_loss(logits, yt, vt)

    result = fit(
        model, batches_from=batches_from, loss_fn=loss_fn, device=device, **loop_options(args)
    )
    step = result.step
    meta = {
        "classes": list(CLASSES),
        "net_shape": list(NET_SHAPE),
        "steps": step,
        "planned_steps": args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "seed": args.seed,
        "threads": args.threads,
        "device": args.device,
        "workers": args.workers,
        "data": f"folder {args.folder}"
        if args.folder
        else "phantom (synthetic), seeds "
        f"{TRAIN_SEED_BASE}..{TRAIN_SEED_BASE + step * args.batch - 1}"
        + (f" + FETAL_PLANES_DB {args.fp_images} (share {args.fp_share})" if fp else ""),
        "train_seconds": result.seconds,
        "final_loss": result.final_loss,
        "validation": "not validated on real images",
    }
    save_weights(model, args.out, meta, args.checkpoint_dir)
    return 0
