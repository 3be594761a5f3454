"""A small multi-label U-Net: one sigmoid channel per structure (structures overlap: the stomach
lies inside the abdomen), so each channel is an independent "this pixel belongs to X" probability.

Input: (N, 1, H, W) float32, each image standardised inside its field of view (zero mean, unit
variance); H and W divisible by 2**depth. Output: (N, C, H, W) logits, C = len(classes).
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


class StructureUNet(nn.Module):
    """U-Net with ``len(widths) - 1`` down-steps; ``widths[i]`` channels at level i.

    Bilinear up-sampling keeps it small; the deepest level sees the whole abdomen (its outline is
    judged by its shape, not by local edges alone).
    """

    def __init__(
        self,
        out_channels: int,
        widths: tuple[int, ...] = (12, 24, 48, 96, 160),
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        self.config = {
            "out_channels": out_channels,
            "widths": list(widths),
            "in_channels": in_channels,
        }
        self.down = nn.ModuleList([DoubleConv(in_channels, widths[0])])
        self.down.extend(DoubleConv(widths[i], widths[i + 1]) for i in range(len(widths) - 1))
        self.up = nn.ModuleList(
            DoubleConv(widths[i + 1] + widths[i], widths[i])
            for i in reversed(range(len(widths) - 1))
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)

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


def build_model(config: dict) -> StructureUNet:
    """The U-Net from the config stored with the weights (``out_channels``, ``widths``)."""
    return StructureUNet(
        out_channels=int(config["out_channels"]),
        widths=tuple(config.get("widths", (12, 24, 48, 96, 160))),
        in_channels=int(config.get("in_channels", 1)),
    )
