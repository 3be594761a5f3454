"""Fetal head biometry: skull segmentation (U-Net trained on HC18), ellipse fit, HC / BPD / OFD.

Import the public API lazily (``from inference.head.predict import HeadPredictor, measure_head``) so
that modules which only need the data helpers do not pay for torch.
"""

from __future__ import annotations

__all__ = ["HeadMeasurement", "HeadPredictor", "measure_head"]


def __getattr__(name: str):  # pragma: no cover - thin lazy import
    if name in __all__:
        from inference.head import predict

        return getattr(predict, name)
    raise AttributeError(name)
