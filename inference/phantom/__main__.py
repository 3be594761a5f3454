"""``python -m inference.phantom --out DIR [--seed N]``: write synthetic demo DICOM exams."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from inference.phantom.demo import write_demo_exams


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m inference.phantom",
        description="Write synthetic (phantom) demo DICOM exams with a manifest of their truth.",
    )
    ap.add_argument("--out", type=Path, required=True, help="output folder (created)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    ap.add_argument("--cine-frames", type=int, default=120, help="frames in the cine sweep (>= 30)")
    args = ap.parse_args(argv)
    if args.cine_frames < 30:
        ap.error(f"--cine-frames must be at least 30, got {args.cine_frames}")
    t0 = time.perf_counter()
    rows = write_demo_exams(args.out, seed=args.seed, cine_frames=args.cine_frames)
    print(
        f"wrote {len(rows)} DICOM files in 3 exams under {args.out} "
        f"({time.perf_counter() - t0:.1f} s); truth in {args.out / 'manifest.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
