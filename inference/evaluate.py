"""Evaluation command line: ``python -m inference.evaluate {hc18,planes,...} [options]``."""

from __future__ import annotations

import sys

from inference._cli import dispatch

# Sub-command → "module:function"; each team adds its own line.
COMMANDS: dict[str, str] = {
    "hc18": "inference.head.evaluate:main",
    "planes": "inference.planes.evaluate:main",
    "structures": "inference.structures.evaluate:main",
    "structures-fp": "inference.structures.evaluate_fp:main",
}

if __name__ == "__main__":
    sys.exit(dispatch("inference.evaluate", COMMANDS))
