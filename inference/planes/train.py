"""``python -m inference.train planes``: train the plane classifier, measure it on held-out real data.

Data: the real labelled images beside the project (HC18 → trans-thalamic brain, Roboflow FETAL_PLANES_DB
brain planes with sub-plane labels and brain-anomaly cases, the Alzubaidi trans-ventricular subset,
PSFHS intrapartum views → "Other"), a FETAL_PLANES_DB download when given (its Train = 1 rows; its
Train = 0 rows are reported as its test set), and phantom frames for every class (the only source of
abdomen, femur, thorax and cervix unless FETAL_PLANES_DB is given). Real data are split by subject
(seeded); the held-out subjects are never seen in training and no epoch is chosen on them.

Writes ``OUT/planes_classifier.pt`` (weights + metadata) and ``OUT/planes_classifier.metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from inference.planes import taxonomy
from inference.planes.data import (
    LabelError,
    Sample,
    dedupe_copies,
    fpdb_samples,
    labels_arrays,
    shared_samples,
    split_by_group,
)
from inference.planes.metrics import classification_report
from inference.planes.preprocess import INPUT_SIZE, ImageReadError, prepare, read_image

N_PLANES = len(taxonomy.PLANES)
N_BRAIN = len(taxonomy.BRAIN_PLANES)
OTHER = taxonomy.PLANE_KEYS.index("other")


def default_data_dir() -> Path:
    env = os.environ.get("SONOREVIEW_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def load_prepared(samples: list[Sample], size: int = INPUT_SIZE) -> np.ndarray:
    """(N, size, size) uint8 classifier inputs; ImageReadError names a bad file."""
    out = np.zeros((len(samples), size, size), np.uint8)
    for i, s in enumerate(samples):
        out[i] = prepare(read_image(s.path), size)
    return out


# ---------------------------------------------------------------------------------------------
# Phantom training frames
# ---------------------------------------------------------------------------------------------


# Phantom sweep seeds kept for measuring and tuning best-frame choice (inference.planes.
# evaluate_cine: evaluation sweeps from 5000, threshold tuning from 6000): no training frame may
# share a seed with them. A sweep of seed s draws its frames with seeds s * 100_003 + i and its
# probe (sector, style) with seed s.
RESERVED_SWEEP_SEEDS = range(5000, 7000)
SWEEP_FRAME_SEED_STRIDE = 100_003
MAX_SWEEP_FRAMES = 400
# Training sweeps: seeds from here (disjoint from RESERVED_SWEEP_SEEDS).
TRAIN_SWEEP_FIRST_SEED = 20_000


def is_reserved_seed(frame_seed: int) -> bool:
    """True when ``frame_seed`` is a probe or frame seed of a reserved (evaluation/tuning) sweep."""
    r = RESERVED_SWEEP_SEEDS
    if frame_seed in r:
        return True
    first = r.start * SWEEP_FRAME_SEED_STRIDE
    last = (r.stop - 1) * SWEEP_FRAME_SEED_STRIDE + MAX_SWEEP_FRAMES
    if not first <= frame_seed <= last:
        return False
    return frame_seed % SWEEP_FRAME_SEED_STRIDE < MAX_SWEEP_FRAMES


def _training_seed(rng: np.random.Generator) -> int:
    """A random phantom frame seed that no reserved evaluation/tuning sweep uses."""
    while True:
        s = int(rng.integers(0, 2**31 - 1))
        if not is_reserved_seed(s):
            return s


def phantom_set(n_per_class: int, seed: int, size: int = INPUT_SIZE, brain_factor: int = 2):
    """Phantom frames with varied quality: (x (N,S,S) uint8, soft plane targets (N,6), brain (N,)).

    ``brain_factor`` × ``n_per_class`` brain frames (they also teach the four sub-planes).
    """
    from inference.phantom.generator import make_frame

    rng = np.random.default_rng([seed, 99])
    xs, ys, bs = [], [], []
    shapes = [(256, 320), (288, 384), (240, 320)]
    for plane in taxonomy.PLANE_KEYS:
        for _i in range(n_per_class * (brain_factor if plane == "fetal_brain" else 1)):
            fseed = _training_seed(rng)
            shape = shapes[int(rng.integers(len(shapes)))]
            kw: dict = {"seed": fseed, "shape": shape}
            soft = False
            label = plane
            u = rng.random()
            if plane == "fetal_brain":
                kw["brain_plane"] = str(
                    rng.choice(
                        ["trans_thalamic", "trans_cerebellar", "trans_ventricular", "other_brain"],
                        p=[0.3, 0.25, 0.25, 0.2],
                    )
                )
                if u < 0.2:
                    kw["asymmetry"] = float(rng.uniform(0.05, 0.1))
                if rng.random() < 0.2:
                    kw["fill"] = float(rng.uniform(0.15, 0.3))
                if kw["brain_plane"] == "other_brain":
                    kw["section_scale"] = float(rng.uniform(0.6, 0.95))
            elif plane == "fetal_abdomen":
                if u < 0.35:
                    fail = str(rng.choice(["stomach", "umbilical_vein", "kidneys", "asymmetry"]))
                    kw |= {"kidneys": True} if fail == "kidneys" else {}
                    kw |= {"asymmetry": 0.07} if fail == "asymmetry" else {}
                    kw |= {fail: False} if fail in {"stomach", "umbilical_vein"} else {}
                    soft = True
                if rng.random() < 0.2:
                    kw["fill"] = float(rng.uniform(0.15, 0.3))
            elif plane == "fetal_thorax":
                if rng.random() < 0.2:
                    kw["fill"] = float(rng.uniform(0.15, 0.3))
            elif plane == "fetal_femur":
                kw["angle_deg"] = float(rng.uniform(-60, 60))
                if u < 0.25:
                    kw["visible_length"] = float(rng.uniform(0.3, 0.8))
                    soft = True
                elif u < 0.35:
                    kw["ends_visible"] = False
                    soft = True
                elif u < 0.45:  # thigh cross-section: not a femur plane
                    kw["visible_length"] = 0.15
                    label = "other"
            f = make_frame(plane, **kw)
            img = f.image
            if rng.random() < 0.3:  # rectangular crop inside the sector, like exported crops
                rows, cols = np.nonzero(f.fov)
                r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
                hh, ww = r1 - r0, c1 - c0
                fr = float(rng.uniform(0.55, 0.8))
                ch, cw = int(hh * fr), int(ww * fr)
                y0 = r0 + int((hh - ch) * rng.uniform(0.3, 0.7))
                x0 = c0 + int((ww - cw) * rng.uniform(0.3, 0.7))
                img = img[y0 : y0 + ch, x0 : x0 + cw]
            if rng.random() < 0.6:  # real scanners smooth speckle more than the phantom does
                img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.6, 1.8)))
            xs.append(prepare(img, size))
            y = np.zeros(N_PLANES, np.float32)
            k = taxonomy.PLANE_KEYS.index(label)
            if soft:
                y[k], y[OTHER] = 0.5, 0.5
            else:
                y[k] = 1.0
            ys.append(y)
            sub = f.brain_plane if label == "fetal_brain" else None
            bs.append(taxonomy.BRAIN_PLANE_KEYS.index(sub) if sub else -1)
    return np.stack(xs), np.stack(ys), np.array(bs, np.int64)


def training_sweep_seeds(n_sweeps: int, seed: int) -> list[int]:
    """Seeds of the phantom sweeps a training run of ``seed`` uses (never a reserved seed)."""
    first = TRAIN_SWEEP_FIRST_SEED + 1000 * seed
    out = list(range(first, first + n_sweeps))
    if any(s in RESERVED_SWEEP_SEEDS for s in out):
        raise ValueError(f"training sweep seeds {out[0]}..{out[-1]} overlap reserved seeds")
    return out


def phantom_sweep_set(n_sweeps: int, seed: int, size: int = INPUT_SIZE):
    """Every frame of ``n_sweeps`` phantom cine sweeps (inference.phantom.sweep), as training data.

    Returns (x (N,S,S) uint8, soft plane targets (N,6), brain sub-plane (N,) or -1). Sweeps show
    the transitions single frames lack (sections between the standard planes, off-axis heads);
    fetal abdomen and femur frames that are not the optimal plane of their view get half "Other",
    as in ``phantom_set``. Seeds: ``training_sweep_seeds`` (disjoint from the evaluation sweeps).
    """
    from inference.phantom.sweep import make_sweep
    from inference.planes.preprocess import prepare_cine

    rng = np.random.default_rng([seed, 98])
    shapes = [(256, 320), (288, 384), (240, 320)]
    xs, ys, bs = [], [], []
    for sweep_seed in training_sweep_seeds(n_sweeps, seed):
        n_frames = int(rng.integers(120, 200))
        shape = shapes[int(rng.integers(len(shapes)))]
        sw = make_sweep(seed=sweep_seed, n_frames=n_frames, shape=shape)
        frames = sw.frames
        if rng.random() < 0.6:  # scanner-like smoothing of speckle, one setting per cine
            sigma = float(rng.uniform(0.6, 1.8))
            frames = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames])
        xs.append(prepare_cine(frames, size))
        for (plane, sub), vq in zip(sw.labels, sw.view_quality, strict=True):
            y = np.zeros(N_PLANES, np.float32)
            k = taxonomy.PLANE_KEYS.index(plane)
            weak = plane in {"fetal_abdomen", "fetal_femur"} and "optimal" not in vq.values()
            if weak:
                y[k], y[OTHER] = 0.5, 0.5
            else:
                y[k] = 1.0
            ys.append(y)
            bs.append(taxonomy.BRAIN_PLANE_KEYS.index(sub) if sub else -1)
    return np.concatenate(xs), np.stack(ys), np.array(bs, np.int64)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def _augment(x, rng_t):
    """Random flips, affine jitter and intensity changes on a (N, 1, S, S) float batch in [0, 1]."""
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    ang = (torch.rand(n, generator=rng_t) - 0.5) * math.radians(40)
    sc = 1 + (torch.rand(n, generator=rng_t) - 0.5) * 0.3
    tx = (torch.rand(n, generator=rng_t) - 0.5) * 0.16
    ty = (torch.rand(n, generator=rng_t) - 0.5) * 0.16
    flip = torch.where(torch.rand(n, generator=rng_t) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    gamma = torch.exp((torch.rand(n, 1, 1, 1, generator=rng_t) - 0.5) * 0.7)
    x = x.clamp(0, 1) ** gamma
    x = x * (0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=rng_t))
    x = x + (torch.rand(n, 1, 1, 1, generator=rng_t) - 0.5) * 0.12
    blur = torch.rand(n, generator=rng_t) < 0.2
    if blur.any():
        x[blur] = F.avg_pool2d(x[blur], 3, 1, 1)
    x = x + torch.randn(x.shape, generator=rng_t) * 0.03 * torch.rand(n, 1, 1, 1, generator=rng_t)
    return x.clamp(0, 1)


def train_model(
    x: np.ndarray,
    y_soft: np.ndarray,
    y_brain: np.ndarray,
    *,
    brain_weight: np.ndarray | None = None,
    epochs: int,
    seed: int,
    batch: int = 32,
    samples_per_epoch: int = 4000,
    lr: float = 2e-3,
    max_minutes: float | None = None,
    brain_boost: float = 1.5,
    init: Path | None = None,
    is_real: np.ndarray | None = None,
    real_share: float | None = None,
    log=print,
):
    """Train PlaneNet with class-balanced sampling; returns the model (eval mode).

    ``brain_weight`` (N,) weighs each sample's sub-plane loss (default 1): HC18's many
    trans-thalamic images are down-weighted so that the sub-plane head cannot learn "HC18-looking
    means trans-thalamic" from them alone. ``real_share`` (with ``is_real`` (N,) bool): within each
    class that has both real and phantom samples, the real ones get this share of the draws
    (default: in proportion to their number), so many phantom frames cannot crowd out real ones.
    """
    import torch
    import torch.nn.functional as F

    from inference.planes.model import PlaneNet

    torch.manual_seed(seed)
    rng_t = torch.Generator().manual_seed(seed)
    model = PlaneNet()
    if init is not None:  # fine-tune from earlier weights (a second, shorter stage)
        model.load_state_dict(torch.load(init, map_location="cpu", weights_only=True)["state_dict"])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = max(1, samples_per_epoch // batch)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.15)
    hard = y_soft.argmax(1)
    counts = np.bincount(hard, minlength=N_PLANES).astype(np.float64)
    w = 1.0 / np.maximum(counts[hard], 1)
    if real_share is not None and is_real is not None:
        for c in range(N_PLANES):
            in_c = hard == c
            real_c, synth_c = in_c & is_real, in_c & ~is_real
            if real_c.any() and synth_c.any():
                w[real_c] = real_share / real_c.sum()  # each class still sums to 1
                w[synth_c] = (1 - real_share) / synth_c.sum()
    w[hard == taxonomy.PLANE_KEYS.index("fetal_brain")] *= brain_boost  # brain feeds two heads
    w /= w.sum()
    if brain_weight is None:
        brain_weight = np.ones(len(x), np.float32)
    has = y_brain >= 0
    bcounts = np.bincount(y_brain[has], weights=brain_weight[has], minlength=N_BRAIN).astype(
        np.float32
    )
    bweight = torch.tensor(
        np.clip(bcounts.sum() / np.maximum(bcounts, 1) / N_BRAIN, 0.3, 5.0), dtype=torch.float32
    )
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y_soft)
    bt = torch.from_numpy(y_brain)
    bwt = torch.from_numpy(brain_weight.astype(np.float32))
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    model.train()
    for ep in range(epochs):
        idx = rng.choice(len(x), size=steps_per_epoch * batch, replace=True, p=w)
        run_loss, run_acc = 0.0, 0.0
        for s in range(steps_per_epoch):
            j = torch.from_numpy(idx[s * batch : (s + 1) * batch])
            xb = _augment(xt[j].float().div(255).unsqueeze(1), rng_t)
            lp, lb = model(xb)
            target = yt[j] * 0.95 + 0.05 / N_PLANES  # label smoothing
            loss = -(target * F.log_softmax(lp, 1)).sum(1).mean()
            bb = bt[j]
            m = bb >= 0
            if m.any():
                per = F.cross_entropy(lb[m], bb[m], weight=bweight, reduction="none")
                loss = loss + (per * bwt[j][m]).sum() / (bweight[bb[m]] * bwt[j][m]).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            run_loss += float(loss.detach())
            run_acc += float((lp.argmax(1) == yt[j].argmax(1)).float().mean())
        minutes = (time.perf_counter() - t0) / 60
        log(
            f"epoch {ep + 1}/{epochs}: loss {run_loss / steps_per_epoch:.3f}, "
            f"train acc {run_acc / steps_per_epoch:.3f}, {minutes:.1f} min"
        )
        if max_minutes and minutes * (ep + 2) / (ep + 1) > max_minutes and ep + 1 < epochs:
            log(f"stopping after epoch {ep + 1}: the next would pass --max-minutes {max_minutes}")
            break
    model.eval()
    return model


def predict_arrays(model, x: np.ndarray, batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    import torch

    ps, bs = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i : i + batch]).float().div(255).unsqueeze(1)
            lp, lb = model(xb)
            ps.append(torch.softmax(lp, 1).numpy())
            bs.append(torch.softmax(lb, 1).numpy())
    if not ps:
        return np.zeros((0, N_PLANES)), np.zeros((0, N_BRAIN))
    return np.concatenate(ps), np.concatenate(bs)


def held_out_report(model, groups: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """Per held-out source: plane report, brain-vs-non-brain accuracy, sub-plane report."""
    brain = taxonomy.PLANE_KEYS.index("fetal_brain")
    out = {}
    for name, (x, yp, yb) in groups.items():
        if len(x) == 0:
            continue
        pp, pb = predict_arrays(model, x)
        pred = pp.argmax(1)
        rep = {
            "n": len(x),
            "plane": classification_report(yp, pred, taxonomy.PLANE_KEYS),
            "brain_vs_non_brain_accuracy": round(
                float(((pred == brain) == (yp == brain)).mean()), 4
            ),
        }
        m = yb >= 0
        if m.any():
            rep["brain_plane"] = classification_report(
                yb[m], pb[m].argmax(1), taxonomy.BRAIN_PLANE_KEYS
            )
        out[name] = rep
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m inference.train planes", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--out", type=Path, required=True, help="folder for planes_classifier.pt")
    ap.add_argument(
        "--data", type=Path, default=None, help="shared data folder (default ../shared/data)"
    )
    ap.add_argument(
        "--fetal-planes-db", type=Path, default=None, help="FETAL_PLANES_DB folder (CSV + Images/)"
    )
    ap.add_argument("--no-shared-data", action="store_true", help="do not use ../shared/data")
    ap.add_argument("--phantom", type=int, default=250, help="phantom frames per class (0 = none)")
    ap.add_argument("--epochs", type=int, default=18)
    ap.add_argument("--samples-per-epoch", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    ap.add_argument(
        "--brain-boost", type=float, default=1.5, help="sampling weight of brain images"
    )
    ap.add_argument(
        "--phantom-brain-factor",
        type=int,
        default=2,
        help="phantom brain frames per class count (they also teach the sub-planes)",
    )
    ap.add_argument(
        "--phantom-sweeps",
        type=int,
        default=0,
        help="also train on every frame of N phantom cine sweeps (seeds from 20000, never the "
        "evaluation sweeps' 5000-6999)",
    )
    ap.add_argument(
        "--real-share",
        type=float,
        default=None,
        help="share of a class's draws given to its real images when it also has phantom frames",
    )
    ap.add_argument("--init", type=Path, default=None, help="start from these weights (fine-tune)")
    ap.add_argument("--held-out", type=float, default=0.25, help="fraction of subjects held out")
    ap.add_argument(
        "--input-size",
        type=int,
        default=INPUT_SIZE,
        help="classifier input side in pixels (the network is fully convolutional: --init "
        "weights of another size can be fine-tuned)",
    )
    ap.add_argument(
        "--version",
        default=None,
        help="model version name stored with the weights (default: "
        "planenet-w24-seed<seed>-<date>); a new version must get a new name",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument(
        "--max-minutes", type=float, default=None, help="stop early to respect a time budget"
    )
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    t_start = time.perf_counter()
    try:
        real: list[Sample] = []
        if not args.no_shared_data:
            data = args.data or default_data_dir()
            if not data.is_dir():
                log(f"error: shared data folder {data} not found (use --data or --no-shared-data)")
                return 2
            real = shared_samples(data)
            log(f"shared data {data}: {len(real)} labelled images")
        train_s, test_s = split_by_group(real, seed=args.seed, held_out=args.held_out)
        fpdb_test: list[Sample] = []
        if args.fetal_planes_db:
            fp_train = fpdb_samples(args.fetal_planes_db, split="train")
            fpdb_test = fpdb_samples(args.fetal_planes_db, split="test")
            # subjects held out from the shared sets stay out of training, whatever source
            held_groups = {s.group for s in test_s}
            train_s += [s for s in fp_train if s.group not in held_groups]
            log(f"FETAL_PLANES_DB: {len(fp_train)} train rows, {len(fpdb_test)} test rows")
        test_s = dedupe_copies(test_s)
        t0 = time.perf_counter()
        x_real = load_prepared(train_s, args.input_size)
        yp_real, yb_real = labels_arrays(train_s)
        log(f"loaded {len(train_s)} real training images in {time.perf_counter() - t0:.0f} s")
    except (LabelError, ImageReadError, taxonomy.UnknownPlaneError) as exc:
        log(f"error: {exc}")
        return 2
    y_soft_real = np.eye(N_PLANES, dtype=np.float32)[yp_real]
    xs, ys, bs = [x_real], [y_soft_real], [yb_real]
    if args.phantom > 0:
        t0 = time.perf_counter()
        xph, yph, bph = phantom_set(
            args.phantom,
            seed=args.seed,
            size=args.input_size,
            brain_factor=args.phantom_brain_factor,
        )
        xs.append(xph)
        ys.append(yph)
        bs.append(bph)
        log(f"generated {len(xph)} phantom frames in {time.perf_counter() - t0:.0f} s")
    n_sweep_frames = 0
    if args.phantom_sweeps > 0:
        t0 = time.perf_counter()
        xsw, ysw, bsw = phantom_sweep_set(args.phantom_sweeps, seed=args.seed, size=args.input_size)
        xs.append(xsw)
        ys.append(ysw)
        bs.append(bsw)
        n_sweep_frames = len(xsw)
        log(
            f"generated {len(xsw)} frames of {args.phantom_sweeps} phantom sweeps "
            f"(seeds {training_sweep_seeds(args.phantom_sweeps, args.seed)[0]}...) "
            f"in {time.perf_counter() - t0:.0f} s"
        )
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    b = np.concatenate(bs)
    bw = np.ones(len(x), np.float32)
    bw[: len(train_s)] = [0.25 if s.source == "hc18" else 1.0 for s in train_s]
    if len(x) == 0:
        log("error: no training images (give --fetal-planes-db, shared data or --phantom N)")
        return 2
    log(
        f"training on {len(x)} images, class counts {np.bincount(y.argmax(1), minlength=N_PLANES).tolist()}"
    )
    model = train_model(
        x,
        y,
        b,
        brain_weight=bw,
        epochs=args.epochs,
        seed=args.seed,
        samples_per_epoch=args.samples_per_epoch,
        lr=args.lr,
        brain_boost=args.brain_boost,
        init=args.init,
        is_real=np.arange(len(x)) < len(train_s),
        real_share=args.real_share,
        max_minutes=args.max_minutes,
        log=log,
    )
    # held-out evaluation, per source (real) and on fresh phantom frames (labelled as phantom)
    groups: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    by_source: dict[str, list[Sample]] = {}
    for s in test_s:
        by_source.setdefault(s.source, []).append(s)
    if fpdb_test:
        by_source["fetal_planes_db_test"] = fpdb_test
    for name, ss in sorted(by_source.items()):
        xp = load_prepared(ss, args.input_size)
        yp, yb = labels_arrays(ss)
        groups[f"real:{name}"] = (xp, yp, yb)
    if by_source:
        all_real = [s for ss in by_source.values() for s in ss]
        yp, yb = labels_arrays(all_real)
        groups["real:all"] = (
            np.concatenate([groups[f"real:{n}"][0] for n in sorted(by_source)]),
            np.concatenate([groups[f"real:{n}"][1] for n in sorted(by_source)]),
            np.concatenate([groups[f"real:{n}"][2] for n in sorted(by_source)]),
        )
    if args.phantom > 0:
        xph, yph, bph = phantom_set(
            max(20, args.phantom // 5), seed=args.seed + 1000, size=args.input_size
        )
        groups["phantom:held_out"] = (xph, yph.argmax(1), bph)
    report = held_out_report(model, groups)
    meta = {
        "version": args.version or f"planenet-w24-seed{args.seed}-{time.strftime('%Y%m%d')}",
        "width": 24,
        "seed": args.seed,
        "epochs": args.epochs,
        "command": "python -m inference.train planes " + " ".join(argv),
        "trained_on": {
            "real_images": len(train_s),
            "real_by_source": {
                k: sum(1 for s in train_s if s.source == k)
                for k in sorted({s.source for s in train_s})
            },
            "phantom_frames": int(args.phantom * (N_PLANES - 1 + args.phantom_brain_factor)),
            "phantom_sweeps": args.phantom_sweeps,
            "phantom_sweep_frames": n_sweep_frames,
        },
        "held_out_subject_fraction": args.held_out,
        "train_minutes": round((time.perf_counter() - t_start) / 60, 1),
    }
    from inference.planes.model import save_weights

    args.out.mkdir(parents=True, exist_ok=True)
    save_weights(model, args.out / "planes_classifier.pt", meta, input_size=args.input_size)
    metrics = {"meta": meta, "held_out": report}
    (args.out / "planes_classifier.metrics.json").write_text(json.dumps(metrics, indent=1))
    for name, rep in report.items():
        line = f"{name}: n={rep['n']} plane acc={rep['plane']['accuracy']} brain-vs-non-brain={rep['brain_vs_non_brain_accuracy']}"
        if "brain_plane" in rep:
            line += f" sub-plane acc={rep['brain_plane']['accuracy']} (n={rep['brain_plane']['n']})"
        log(line)
    log(f"wrote {args.out / 'planes_classifier.pt'} and metrics ({meta['train_minutes']} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
