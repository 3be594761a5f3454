"""The training loop the structure network and the femur second look share.

AdamW steps with cosine learning-rate decay over ``steps``; a log line (mean loss, learning rate,
elapsed seconds) every 25 steps to ``checkpoint_dir/train.log``; a checkpoint
(``checkpoint_dir/last.pt``: weights, optimiser, step, history) every ``checkpoint_every`` steps,
at the end and at the time limit, from which ``resume`` continues. Weights are written as a float16
state dict with the model's config and metadata (``torch.load(..., weights_only=True)``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: A batch: inputs (N, 1, H, W), targets (N, C, H, W), and which (image, channel) pairs are
#: labelled (N, C) bool, or None when all are.
Batch = tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_] | None]


@dataclass
class FitResult:
    """Where a run ended: the last step done, the logged history, wall seconds of all sessions."""

    step: int
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final_loss(self) -> float | None:
        return self.history[-1]["loss"] if self.history else None


@contextmanager
def worker_pool(workers: int) -> Iterator[Any]:
    """``workers`` spawned processes drawing batches (None for 0), terminated on leaving.

    Call before torch is first used in this process: a fork after torch has started can hang its
    children, and spawned workers import only what the batch function needs."""
    if not workers:
        yield None
        return
    import multiprocessing

    pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_init)
    try:
        yield pool
    finally:
        pool.terminate()


def prefetched(
    pool: Any, start: int, steps: int, batch: int, make: Callable[[tuple[int, int]], Any]
) -> Iterator[Any]:
    """``make((step, batch))`` for steps start … steps − 1, in order, drawn by ``pool`` with at
    most 3 batches per worker ahead (a batch is tens of MB: an unbounded queue would fill the
    memory when the network is the slower side)."""
    from collections import deque

    depth = 3 * pool._processes
    pending: deque = deque()
    k = start
    while k < steps or pending:
        while k < steps and len(pending) < depth:
            pending.append(pool.apply_async(make, ((k, batch),)))
            k += 1
        yield pending.popleft().get()


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)  # N workers on N cores: no oversubscription


def prepare_torch(*, threads: int, seed: int, device: str) -> Any:
    """Set torch's CPU threads and weight-initialisation seed; the training device (see
    :func:`training_device`), with cuDNN picking its fastest kernels for the fixed input shape."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    dev = training_device(device)
    torch.backends.cudnn.benchmark = dev.type == "cuda"
    return dev


def training_device(name: str) -> Any:
    """The torch device ``name`` ("cpu", "cuda", "cuda:1"), or SystemExit saying why not."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise SystemExit(f"--device {name}: not a device name ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: no CUDA device on this machine; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise SystemExit(f"--device {name}: only cpu and cuda are supported")
    return device


def loop_options(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`fit`'s schedule and checkpoint keywords from a training command's arguments."""
    return {
        "steps": args.steps,
        "lr": args.lr,
        "checkpoint_dir": args.checkpoint_dir,
        "checkpoint_every": args.checkpoint_every,
        "time_limit_min": args.time_limit_min,
        "resume": args.resume,
    }


def fit(
    model: Any,
    *,
    batches_from: Callable[[int], Iterator[Batch]],
    loss_fn: Callable[[Any, Any, Any], Any],
    steps: int,
    lr: float,
    device: Any,
    checkpoint_dir: Path,
    checkpoint_every: int = 200,
    time_limit_min: float | None = None,
    resume: bool = False,
) -> FitResult:
    """Train ``model`` (already on ``device``) in place.

    ``batches_from(start)`` yields the batches of steps ``start``, ``start + 1``, …;
    ``loss_fn(logits, targets, valid)`` is the loss (``valid`` None or an (N, C) bool tensor).
    Side effects: writes ``checkpoint_dir/last.pt`` and appends to ``checkpoint_dir/train.log``.
    """
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    ckpt = checkpoint_dir / "last.pt"
    start, history = 0, []
    if resume and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start, history = int(state["step"]), list(state.get("history", []))
    t0 = time.time()
    elapsed0 = history[-1]["elapsed_s"] if history else 0.0
    model.train()
    step, running = start, []
    batches = batches_from(start)
    with (checkpoint_dir / "train.log").open("a") as log:
        while step < steps:
            step_lr = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            for g in opt.param_groups:
                g["lr"] = step_lr
            x, y, valid = next(batches)
            vt = None if valid is None else torch.from_numpy(valid).to(device)
            logits = model(torch.from_numpy(x).to(device))
            loss = loss_fn(logits, torch.from_numpy(y).to(device), vt)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running.append(loss.detach())
            step += 1
            elapsed = elapsed0 + time.time() - t0
            if step % 25 == 0 or step == steps:
                mean_loss = float(torch.stack(running).mean())  # one device sync per 25 steps
                rec = {"step": step, "loss": mean_loss, "lr": step_lr, "elapsed_s": elapsed}
                history.append(rec)
                running = []
                log.write(json.dumps(rec) + "\n")
                log.flush()
            stop = time_limit_min is not None and elapsed > 60 * time_limit_min
            if step % checkpoint_every == 0 or step == steps or stop:
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
    return FitResult(step, history, round(elapsed0 + time.time() - t0, 1))


def save_weights(model: Any, out: Path, meta: dict, checkpoint_dir: Path, **extra: Any) -> None:
    """Write ``model`` (moved to the CPU, eval mode) as float16 weights with its config, ``meta``
    and ``extra`` top-level entries to ``out``; log and print ``meta``."""
    import torch

    model.eval().cpu()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "config": model.config,
            "state_dict": {
                k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()
            },
            **extra,
            "meta": meta,
        },
        out,
    )
    with (checkpoint_dir / "train.log").open("a") as log:
        log.write(json.dumps({"saved": str(out), **meta}) + "\n")
    print(json.dumps(meta, indent=2))
