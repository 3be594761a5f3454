"""A small U-Net for binary segmentation of the filled fetal skull ellipse.

Input: (N, 1, H, W) float32, each image standardised (zero mean, unit variance); H and W divisible
by 2**depth. Output: (N, 1, H, W) logits (apply a sigmoid for the foreground probability).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DoubleConv(nn.Sequential):
    """Two 3×3 convolutions, each followed by batch norm and ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net with ``depth`` down-steps and ``base`` channels at full resolution (doubling per step).

    Bilinear up-sampling (instead of transposed convolutions) keeps it small and free of
    checkerboard artefacts.
    """

    def __init__(self, in_channels: int = 1, base: int = 8, depth: int = 4) -> None:
        super().__init__()
        self.config = {"in_channels": in_channels, "base": base, "depth": depth}
        chans = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([DoubleConv(in_channels, chans[0])])
        self.down.extend(DoubleConv(chans[i], chans[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            DoubleConv(chans[i + 1] + chans[i], chans[i]) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(chans[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


def build_model(config: dict | None = None) -> UNet:
    """Build the U-Net from a config dict as stored with the weights (``in_channels``, ``base``, ``depth``)."""
    return UNet(**(config or {}))
