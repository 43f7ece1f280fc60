"""The mask head: a U-Net decoder over the image encoder's feature maps, and its Dice + cross-entropy loss.

nnU-Net's defaults are the reference: each decoder stage upsamples, concatenates the encoder's map of that
resolution (the skip connection) and applies two 3×3 convolutions with instance norm and leaky ReLU; the loss is
cross-entropy plus soft Dice over the foreground classes, computed over the batch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv_block(width_in: int, width: int) -> nn.Sequential:
    """(3×3 conv → instance norm → leaky ReLU) × 2."""
    return nn.Sequential(
        nn.Conv2d(width_in, width, 3, padding=1, bias=False), nn.InstanceNorm2d(width, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv2d(width, width, 3, padding=1, bias=False), nn.InstanceNorm2d(width, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
    )


class UpStage(nn.Module):
    """Upsample to the skip map's size, concatenate it, convolve."""

    def __init__(self, width_in: int, skip: int, width: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(width_in, width, 1)
        self.block = conv_block(width + skip, width)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.reduce(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(torch.cat([x, skip], dim=1))


class MaskHead(nn.Module):
    """Feature maps ``(channels, stride)`` finest first → class logits ``(n, classes, H, W)`` at the image's size.

    The hidden layers' vector ``h`` (every input, pooled) is added to the deepest map as a per-channel bias, so
    table columns beside the image reach the mask too. When the finest map is coarser than the image (a ResNet's
    strided stem) a last stage upsamples to full size.
    """

    def __init__(self, in_dim: int, shapes: list[tuple[int, int]], classes: int) -> None:
        super().__init__()
        if not shapes:
            raise ValueError("a mask head needs the image encoder's feature maps")
        deepest = shapes[-1][0]
        self.from_hidden = nn.Linear(in_dim, deepest)
        self.bottom = conv_block(deepest, deepest)
        stages, width_in = [], deepest
        for channels, _ in reversed(shapes[:-1]):
            stages.append(UpStage(width_in, channels, channels))
            width_in = channels
        self.stages = nn.ModuleList(stages)
        self.stride = shapes[0][1] if len(shapes) > 1 else shapes[-1][1]
        finest = max(8, width_in // 2)
        self.full = conv_block(width_in, finest) if self.stride > 1 else None
        self.logits = nn.Conv2d(finest if self.full is not None else width_in, classes, 1)

    def forward(self, h: torch.Tensor, maps: list[torch.Tensor]) -> torch.Tensor:
        x = self.bottom(maps[-1] + self.from_hidden(h)[:, :, None, None])
        for stage, skip in zip(self.stages, reversed(maps[:-1])):
            x = stage(x, skip)
        if self.full is not None:
            finest = maps[0] if len(maps) > 1 else maps[-1]
            size = (finest.shape[-2] * self.stride, finest.shape[-1] * self.stride)
            x = self.full(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        return self.logits(x)


def fit_target(target: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Class indices ``(n, h, w)`` at the logits' ``size`` (nearest), as int64."""
    if tuple(target.shape[-2:]) != tuple(size):
        target = F.interpolate(target[:, None].float(), size=size, mode="nearest")[:, 0]
    return target.long()


class DiceCELoss(nn.Module):
    """Cross-entropy (class-weighted) plus 1 − soft Dice averaged over the foreground classes, batch-wise."""

    def __init__(self, classes: int, weights: list[float] | None = None, smooth: float = 1.0) -> None:
        super().__init__()
        self.classes, self.smooth = classes, smooth
        self.register_buffer("weight", torch.tensor(weights, dtype=torch.float32) if weights else None,
                             persistent=False)

    def forward(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raw = raw.float()
        labels = fit_target(target, tuple(raw.shape[-2:]))
        ce = F.cross_entropy(raw, labels, weight=self.weight)
        proba = torch.softmax(raw, dim=1)[:, 1:]
        onehot = F.one_hot(labels, self.classes).permute(0, 3, 1, 2)[:, 1:].float()
        dims = (0, 2, 3)
        overlap = (proba * onehot).sum(dims)
        dice = (2 * overlap + self.smooth) / (proba.sum(dims) + onehot.sum(dims) + self.smooth)
        return ce + (1 - dice.mean())
