"""The image encoder: uint8 pixels → augmented (in training only), normalised → CNN or small ResNet → a vector."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Augment(nn.Module):
    """Random shift, rotation, scale and crop (one affine resample), optional horizontal flip, brightness/contrast
    jitter.

    Works on pixel values in [0, 1] so the zeros that resampling pads with are black, as the resize padding is.
    Draws from the global CPU RNG, which training seeds and checkpoints, so a resumed run draws the same numbers.
    """

    def __init__(self, shift: float, rotation: float, scale: float, flip: bool, brightness: float, contrast: float,
                 crop: float = 0.0) -> None:
        super().__init__()
        self.shift, self.rotation, self.scale, self.flip = shift, rotation, scale, flip
        self.brightness, self.contrast, self.crop = brightness, contrast, crop

    @property
    def moves(self) -> bool:
        return bool(self.shift or self.rotation or self.scale or self.flip or self.crop)

    @property
    def draws(self) -> int:
        """Uniform draws per row: 7, and 4 more for a crop (only then, so runs without one draw as before)."""
        return 11 if self.crop else 7

    def theta(self, u: torch.Tensor) -> torch.Tensor:
        """The affine maps ``(n, 2, 3)`` of ``F.affine_grid`` (output → input, coordinates in [-1, 1]) from the
        uniform draws ``u`` in [-1, 1]: columns 0-4 are rotation, zoom, shift x and y, and flip."""
        n = u.shape[0]
        angle = u[:, 0] * math.radians(self.rotation)
        zoom = 1 + u[:, 1] * self.scale
        mirror = torch.where(u[:, 4] > 0, -1.0, 1.0) if self.flip else torch.ones(n)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([
            torch.stack([cos * mirror, -sin, u[:, 2] * 2 * self.shift], dim=1),
            torch.stack([sin * mirror, cos, u[:, 3] * 2 * self.shift], dim=1),
        ], dim=1)
        if not self.crop:
            return theta
        # A crop keeps 1 - crop to 1 of each side (its own aspect), anywhere inside the picture, stretched to the
        # size: the input window [centre - keep, centre + keep] in [-1, 1], composed after the other moves.
        keep = 1 - self.crop * (u[:, 7:9] + 1) / 2  # (n, 2): x, y
        centre = u[:, 9:11] * (1 - keep)
        return torch.cat([theta[:, :, :2] * keep[:, :, None], theta[:, :, 2:] * keep[:, :, None] + centre[:, :, None]],
                         dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        u = torch.rand(n, self.draws) * 2 - 1  # CPU draws: the same on every device, and saved with the checkpoint
        if self.moves:
            x = warp(x, self.theta(u).to(x.device, x.dtype))
        if self.brightness or self.contrast:
            gain = (1 + u[:, 5] * self.contrast).to(x.device, x.dtype).view(n, 1, 1, 1)
            offset = (u[:, 6] * self.brightness).to(x.device, x.dtype).view(n, 1, 1, 1)
            centre = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - centre) * gain + centre + offset
        return x


def warp(x: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """``x`` (n, C, H, W) resampled through the affine maps ``theta`` (n, 2, 3); outside the picture is 0 (black,
    as the resize padding is; for a mask, background)."""
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def _norm(width: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(width) if batch_norm else nn.Identity()


def cnn(channels: int, size: int, widths: Sequence[int], depths: Sequence[int], kernel: int, pool: str,
        batch_norm: bool, dropout: float) -> nn.Sequential:
    """Stages of (conv → norm → ReLU) × depth, each followed by 2×2 pooling while the map is at least 2 px."""
    layers: list[nn.Module] = []
    width_in = channels
    for width, depth in zip(widths, depths):
        for _ in range(depth):
            layers += [nn.Conv2d(width_in, width, kernel, padding=kernel // 2, bias=not batch_norm),
                       _norm(width, batch_norm), nn.ReLU(inplace=True)]
            width_in = width
        if size >= 2:
            layers.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
            size //= 2
        if dropout:
            layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3×3 convolutions and a shortcut (1×1 projection when the shape changes)."""

    def __init__(self, width_in: int, width: int, stride: int, batch_norm: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width_in, width, 3, stride, 1, bias=not batch_norm)
        self.norm1 = _norm(width, batch_norm)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=not batch_norm)
        self.norm2 = _norm(width, batch_norm)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or width_in != width:
            self.shortcut = nn.Sequential(nn.Conv2d(width_in, width, 1, stride, bias=not batch_norm),
                                          _norm(width, batch_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)), inplace=True)
        return F.relu(self.norm2(self.conv2(y)) + self.shortcut(x), inplace=True)


def resnet(channels: int, size: int, widths: Sequence[int], depths: Sequence[int], batch_norm: bool,
           dropout: float) -> nn.Sequential:
    """A small ResNet: a stem (strided with max pooling for images over 64 px), then stages that halve the map."""
    if size > 64:
        stem = [nn.Conv2d(channels, widths[0], 7, 2, 3, bias=not batch_norm), _norm(widths[0], batch_norm),
                nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    else:
        stem = [nn.Conv2d(channels, widths[0], 3, 1, 1, bias=not batch_norm), _norm(widths[0], batch_norm),
                nn.ReLU(inplace=True)]
    layers: list[nn.Module] = list(stem)
    width_in = widths[0]
    for stage, (width, depth) in enumerate(zip(widths, depths)):
        for block in range(depth):
            layers.append(BasicBlock(width_in, width, 2 if stage and not block else 1, batch_norm))
            width_in = width
        if dropout:
            layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


class ImageEncoder(nn.Module):
    """uint8 or uint16 (n, C, H, W) → (n, out_dim). Normalises with the fitted per-channel mean and std (pixel
    units: 0-255, or 0-65535 at 16 bits)."""

    def __init__(self, body: nn.Module, out_dim: int, mean: Sequence[float], std: Sequence[float],
                 augment: Augment | None, full_scale: float = 255.0) -> None:
        super().__init__()
        self.body, self.out_dim, self.augment, self.full_scale = body, out_dim, augment, full_scale
        # Not persistent: they are the fitted state in lamina.json, not weights.
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1) / full_scale, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1) / full_scale, persistent=False)
        self._channels_last = False

    def _prepared(self, x: torch.Tensor) -> torch.Tensor:
        # Pixel values in units of full_scale (255, or 65535 for 16-bit scans) whatever the dtype: uint8 / uint16,
        # or floats (explanations interpolate them; training moved them together with a spatial target)
        x = x.float() / self.full_scale
        if self.training and self.augment is not None:
            x = self.augment(x)
        x = (x - self.mean) / self.std
        if x.is_cuda:  # tensor cores want NHWC; convert the weights once, the batch every step
            if not self._channels_last:
                self.body.to(memory_format=torch.channels_last)
                self._channels_last = True
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self._prepared(x)).mean(dim=(2, 3))

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The body's maps, finest first: each stage's output just before the resolution drops, and the last one
        (what a spatial head — boxes, masks — reads, with ``map_shapes`` telling its channels and strides)."""
        maps: list[torch.Tensor] = []
        x = self._prepared(x)
        for index, layer in enumerate(self.body):
            y = layer(x)
            if index and y.shape[-1] < x.shape[-1]:  # the input itself is not a feature map
                maps.append(x)
            x = y
        return [*maps, x]

    def map_shapes(self, channels: int, height: int, width: int) -> list[tuple[int, int]]:
        """``(channels, stride)`` of each of ``feature_maps``' maps for images of ``height`` × ``width``, planned
        from one blank image in eval mode (no running statistics touched; on the meta device when the encoder is
        planned there, so nothing is allocated)."""
        was, device = self.training, self.mean.device
        self.eval()
        try:
            with torch.no_grad():
                maps = self.feature_maps(torch.zeros(1, channels, height, width, device=device))
        finally:
            self.train(was)
        return [(int(m.shape[1]), max(1, round(width / m.shape[-1]))) for m in maps]
