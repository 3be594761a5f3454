"""Biometry calculator: ``python -m inference.biometry --hc MM --bpd MM --ac MM --fl MM [--ofd MM]
[--ga-weeks W]``.

Prints ONE JSON object (see :meth:`inference.biometry.calculator.BiometryReport.to_dict`) with every
gestational-age estimate, every estimated fetal weight and every centile the inputs allow, each with
its formula identity and flags. Inputs in mm; ``--ga-weeks`` (weeks, ``20.5``, or weeks+days,
``20+3``) is the GA from dates or an early scan, needed for centiles. Bad arguments: one line on
stderr naming the argument and why, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from inference.biometry.calculator import compute_all, parse_ga_weeks


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints the whole usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _OneLineParser(
        prog="python -m inference.biometry",
        description="Fetal biometry calculator: GA (Hadlock 1984, INTERGROWTH-21st), EFW "
        "(Hadlock 1985, INTERGROWTH-21st) and INTERGROWTH-21st centiles. Inputs in mm.",
    )
    for flag, label in (
        ("--bpd", "biparietal diameter"),
        ("--hc", "head circumference"),
        ("--ac", "abdominal circumference"),
        ("--fl", "femur length"),
        ("--ofd", "occipito-frontal diameter"),
    ):
        p.add_argument(flag, type=float, metavar="MM", help=f"{label} in mm")
    p.add_argument(
        "--ga-weeks",
        metavar="W",
        help="gestational age from dates or an early scan, for centiles: weeks (20.5) or "
        "weeks+days (20+3)",
    )
    p.add_argument("--indent", type=int, default=None, help="pretty-print the JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    measurements = {
        "bpd_mm": args.bpd,
        "hc_mm": args.hc,
        "ac_mm": args.ac,
        "fl_mm": args.fl,
        "ofd_mm": args.ofd,
    }
    try:
        ga_days = None if args.ga_weeks is None else parse_ga_weeks(args.ga_weeks)
        report = compute_all(measurements, ga_days=ga_days)
    except ValueError as exc:
        message = str(exc)
        for name in ("ga_days", "ga_weeks"):
            message = message.replace(f"{name}:", "--ga-weeks:", 1)
        for name in ("bpd", "hc", "ac", "fl", "ofd"):
            message = message.replace(f"{name}_mm:", f"--{name}:", 1)
        parser.error(message)
    json.dump(report.to_dict(), sys.stdout, indent=args.indent, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
