"""Benchmark: plane classifier vs a SonoNet-64-sized VGG reference, and a 300-frame cine.

    .venv/bin/python bench/bench_planes.py [--threads 2] [--repeats 5]

Prints ms per frame at batch 1 and 64 on CPU (and CUDA when available) for PlaneNet and for the
SonoNet-64-sized reference (Baumgartner et al. 2017: 64 base channels, ~14.9 M parameters) at the
same (160, 160) input, their ratio, and the wall time to classify a 300-frame phantom cine
(FOV crop + letterbox + network) with the shipped weights (random weights if none are shipped).
Medians of ``--repeats`` runs after one warm-up. Targets: cine <= 3 s on 2 cores; ratio >= 5.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference.planes.model import (
    DEFAULT_WEIGHTS,
    PlaneNet,
    Predictor,
    SonoNetReference,
    count_parameters,
)
from inference.planes.preprocess import INPUT_SIZE


def ms_per_frame(model: torch.nn.Module, batch: int, device: str, repeats: int) -> float:
    x = torch.rand(batch, 1, INPUT_SIZE, INPUT_SIZE, device=device)
    times = []
    with torch.no_grad():
        for _ in range(3):  # warm-up (first calls allocate and pick kernels)
            model(x)
        for _ in range(repeats if batch > 1 else 4 * repeats):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(x)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) / batch * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cine-frames", type=int, default=300)
    args = ap.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    ours, ref = PlaneNet().eval(), SonoNetReference().eval()
    print(f"torch {torch.__version__}, input 1x{INPUT_SIZE}x{INPUT_SIZE}, medians")
    print(
        f"PlaneNet {count_parameters(ours) / 1e6:.2f} M params; "
        f"SonoNet-64-sized reference {count_parameters(ref) / 1e6:.2f} M params"
    )
    # one thread as well: on a shared 2-core machine a second thread that waits for a busy core
    # can make batch-1 inference slower than one thread
    for threads in sorted({1, args.threads}):
        torch.set_num_threads(threads)
        for device in devices if threads == args.threads else ["cpu"]:
            ours.to(device)
            ref.to(device)
            for batch in (1, 64):
                a = ms_per_frame(ours, batch, device, args.repeats)
                b = ms_per_frame(ref, batch, device, args.repeats)
                where = f"{device} {threads} thr" if device == "cpu" else device
                print(
                    f"{where} batch {batch:>2}: PlaneNet {a:7.2f} ms/frame | SonoNet-64 ref "
                    f"{b:7.2f} ms/frame | ratio {b / a:5.1f}x"
                )
            ours.to("cpu")
            ref.to("cpu")
    torch.set_num_threads(args.threads)

    from inference.phantom.sweep import make_sweep

    sweep = make_sweep(seed=0, n_frames=args.cine_frames)
    if DEFAULT_WEIGHTS.is_file():
        predictor = Predictor()
        source = "shipped weights"
    else:
        predictor = Predictor.__new__(Predictor)
        predictor.model, predictor.input_size, predictor.device = ours, INPUT_SIZE, "cpu"
        source = "random weights (none shipped)"
    predictor.predict_cine(sweep.frames[:8])  # warm-up
    times = []
    for _ in range(max(1, args.repeats // 2)):
        t0 = time.perf_counter()
        predictor.predict_cine(sweep.frames)
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    h, w = sweep.frames.shape[1:]
    print(
        f"cine: {args.cine_frames} frames {h}x{w} classified in {t:.2f} s "
        f"({t / args.cine_frames * 1000:.1f} ms/frame incl. crop+letterbox; {source})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
