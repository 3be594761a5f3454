"""Locating and loading shipped weights files (float16 state dicts with their config), shared by
the predictors so that each loads and names a second-look model the same way."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any


def second_look_path(first: Path, option: bool | str | Path, beside: str, what: str) -> Path | None:
    """Where a second-look model's weights are: ``option`` True → the file ``beside`` next to the
    first model's weights ``first`` when it exists (None otherwise); a path → that file
    (FileNotFoundError naming ``what`` when absent: a snapshot has no neighbours, so the caller
    names the file); False → None (first pass alone)."""
    if option is False:
        return None
    if isinstance(option, (str, Path)):
        path = Path(option)
        if not path.is_file():
            raise FileNotFoundError(f"{what} weights not found at {path}")
        return path
    path = first.with_name(beside)
    return path if path.is_file() else None


def load_weights(
    path: Path, build: Callable[[dict], Any], device: Any
) -> tuple[Any, dict[str, Any], str]:
    """(model in eval mode on ``device``, the file's dict, first 12 hex digits of its SHA-256)."""
    import torch

    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = build(blob["config"])
    model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    model.eval().to(device)
    return model, blob, hashlib.sha256(path.read_bytes()).hexdigest()[:12]
