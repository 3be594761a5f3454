"""Shared sub-command dispatch for ``python -m inference.train`` and ``python -m inference.evaluate``.

Each sub-command lives in its own module exposing ``main(argv: list[str]) -> int``; modules are imported
lazily so that ``--help`` and unrelated sub-commands never pay for torch.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping


def dispatch(prog: str, commands: Mapping[str, str], argv: list[str] | None = None) -> int:
    """Run the sub-command named by ``argv[0]``; ``commands`` maps names to ``module:function``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        names = ", ".join(sorted(commands))
        print(f"usage: python -m {prog} {{{names}}} [options]", file=sys.stderr)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in commands:
        names = ", ".join(sorted(commands))
        print(f"{prog}: unknown sub-command {name!r}; choose one of: {names}", file=sys.stderr)
        return 2
    module_name, _, function_name = commands[name].partition(":")
    module = importlib.import_module(module_name)
    return int(getattr(module, function_name or "main")(rest) or 0)
