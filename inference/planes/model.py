"""Plane classifier network, the SonoNet-64-sized reference for benchmarks, and the Predictor.

PlaneNet: a small MobileNet-style network (depthwise-separable convolutions, ~0.35 M parameters)
on one grey (160, 160) letterboxed input, with two heads: the six FETAL_PLANES_DB plane classes
and the four brain sub-planes (meaningful when the plane is "Fetal brain"). No pretrained weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inference.planes import taxonomy
from inference.planes.preprocess import INPUT_SIZE, prepare, prepare_cine

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "planes_classifier.pt"


def _dw_block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class PlaneNet(nn.Module):
    """(N, 1, S, S) float in [0, 1] → (plane logits (N, 6), brain sub-plane logits (N, 4))."""

    def __init__(self, width: int = 24, dropout: float = 0.2):
        super().__init__()
        w = width
        self.stem = nn.Sequential(
            nn.Conv2d(1, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)
        )
        cfg = [(w, 2 * w, 2), (2 * w, 2 * w, 1), (2 * w, 4 * w, 2), (4 * w, 4 * w, 1)]
        cfg += [(4 * w, 8 * w, 2), (8 * w, 8 * w, 1), (8 * w, 8 * w, 1)]
        cfg += [(8 * w, 16 * w, 2), (16 * w, 16 * w, 1)]
        self.features = nn.Sequential(*[_dw_block(a, b, s) for a, b, s in cfg])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.plane_head = nn.Linear(16 * w, len(taxonomy.PLANES))
        self.brain_head = nn.Linear(16 * w, len(taxonomy.BRAIN_PLANES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x - 0.25) / 0.25  # ultrasound frames are mostly dark
        f = self.drop(torch.flatten(self.pool(self.features(self.stem(x))), 1))
        return self.plane_head(f), self.brain_head(f)


class SonoNetReference(nn.Module):
    """VGG-style SonoNet-64-sized network (Baumgartner et al. 2017) for speed comparison only.

    Feature blocks of 64-128-256-512-512 channels (2, 2, 3, 3, 3 conv3x3 + BN + ReLU, max-pool
    between), 1x1 adaptation layers to the classes and global average pooling; ~14.9 M parameters,
    as reported for SonoNet-64. Not trained; never used for predictions.
    """

    def __init__(self, n_classes: int = 14, base: int = 64):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for i, (mult, n) in enumerate([(1, 2), (2, 2), (4, 3), (8, 3), (8, 3)]):
            for _ in range(n):
                layers += [nn.Conv2d(cin, base * mult, 3, padding=1, bias=False)]
                layers += [nn.BatchNorm2d(base * mult), nn.ReLU(inplace=True)]
                cin = base * mult
            if i < 4:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.adaptation = nn.Sequential(
            nn.Conv2d(cin, base * 4, 1, bias=False),
            nn.BatchNorm2d(base * 4),
            nn.ReLU(inplace=True),
            nn.Conv2d(base * 4, n_classes, 1, bias=False),
            nn.BatchNorm2d(n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adaptation(self.features(x)).mean(dim=(2, 3))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class PlanePrediction:
    """Per-frame probabilities: plane (N, 6) in taxonomy.PLANES order, brain (N, 4) in
    taxonomy.BRAIN_PLANES order (conditional on the frame being a brain plane)."""

    plane_probs: np.ndarray
    brain_probs: np.ndarray

    def labels(self) -> list[tuple[str, str | None]]:
        """Most probable (plane key, brain sub-plane key or None) per frame."""
        out = []
        for p, b in zip(self.plane_probs, self.brain_probs, strict=True):
            key = taxonomy.PLANE_KEYS[int(p.argmax())]
            sub = taxonomy.BRAIN_PLANE_KEYS[int(b.argmax())] if key == "fetal_brain" else None
            out.append((key, sub))
        return out


def save_weights(model: PlaneNet, path: Path, meta: dict, input_size: int = INPUT_SIZE) -> None:
    """Weights plus the metadata needed to use them (class order, input size, training facts)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "state_dict": state,
        "meta": {
            "planes": list(taxonomy.PLANE_KEYS),
            "brain_planes": list(taxonomy.BRAIN_PLANE_KEYS),
            "input_size": int(input_size),
            **meta,
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


class Predictor:
    """Loads the classifier once; predicts many frames (any size, grey or colour uint8)."""

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, device: str = "cpu"):
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"plane classifier weights not found at {path}; train them with "
                "`python -m inference.train planes --out inference/weights/`"
            )
        payload = torch.load(path, map_location=device, weights_only=True)
        meta = payload["meta"]
        if list(meta["planes"]) != list(taxonomy.PLANE_KEYS):
            raise ValueError(f"{path}: class order {meta['planes']} differs from the taxonomy")
        self.meta = meta
        self.input_size = int(meta["input_size"])
        self.model = PlaneNet(width=int(meta.get("width", 24)))
        self.model.load_state_dict(payload["state_dict"])
        self.model.eval().to(device)
        self.device = device

    @torch.no_grad()
    def predict_prepared(self, batch: np.ndarray, batch_size: int = 64) -> PlanePrediction:
        """(N, S, S) uint8 already-prepared inputs → probabilities."""
        planes, brains = [], []
        for i in range(0, len(batch), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(batch[i : i + batch_size])).to(self.device)
            x = x.float().div_(255.0).unsqueeze(1)
            lp, lb = self.model(x)
            planes.append(torch.softmax(lp, 1).cpu().numpy())
            brains.append(torch.softmax(lb, 1).cpu().numpy())
        if not planes:
            return PlanePrediction(np.zeros((0, 6), np.float32), np.zeros((0, 4), np.float32))
        return PlanePrediction(np.concatenate(planes), np.concatenate(brains))

    def predict(self, images: list[np.ndarray] | np.ndarray) -> PlanePrediction:
        """Independent images (each (H, W) or (H, W, 3), any size): each cropped to its own FOV."""
        return self.predict_prepared(np.stack([prepare(im, self.input_size) for im in images]))

    def predict_cine(self, frames: np.ndarray) -> PlanePrediction:
        """(T, H, W) cine frames sharing one field of view → per-frame probabilities."""
        return self.predict_prepared(prepare_cine(frames, self.input_size))
