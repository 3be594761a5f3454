"""Training command line: ``python -m inference.train {head,planes,...} [options]``."""

from __future__ import annotations

import sys

from inference._cli import dispatch

# Sub-command → "module:function"; each team adds its own line.
COMMANDS: dict[str, str] = {
    "head": "inference.head.train:main",
    "head-refine": "inference.head.train_refine:main",
    "planes": "inference.planes.train:main",
    "structures": "inference.structures.train:main",
    "femur-refine": "inference.structures.train_femur_refine:main",
}

if __name__ == "__main__":
    sys.exit(dispatch("inference.train", COMMANDS))
