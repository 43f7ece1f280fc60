"""The CenterNet-style head and its loss: a heat-map per class at one stride (a peak at each object's centre) and
four regressions there (the centre's offset within its cell, log width and log height in cells).

The head fuses the feature maps from the chosen stride down (coarser ones projected and upsampled onto it), so it
sees both fine position and wide context; it has no NMS and no data-dependent shapes, so it exports to ONNX whole.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

PRIOR = 0.01  # the heat-maps start near this probability everywhere: focal loss' usual initialisation
SIGMA = 0.54 / 6  # a box's Gaussian spreads over this share of its size (TTFNet's elliptical peaks)


def pick_map(shapes: list[tuple[int, int]], stride: int) -> int:
    """The index of the finest map at least ``stride`` coarse (the coarsest when none is)."""
    for index, (_, s) in enumerate(shapes):
        if s >= stride:
            return index
    return len(shapes) - 1


class BoxesHead(nn.Module):
    """Feature maps → ``(n, classes + 4, h, w)``: class logits, then offset x, y and log size w, h."""

    def __init__(self, shapes: list[tuple[int, int]], classes: int, stride: int, dim: int) -> None:
        super().__init__()
        self.first = pick_map(shapes, stride)
        self.lateral = nn.ModuleList(nn.Conv2d(c, dim, 1) for c, _ in shapes[self.first:])
        self.mix = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.BatchNorm2d(dim), nn.ReLU())
        self.heat = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.ReLU(), nn.Conv2d(dim, classes, 1))
        self.box = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.ReLU(), nn.Conv2d(dim, 4, 1))
        nn.init.constant_(self.heat[-1].bias, -math.log((1 - PRIOR) / PRIOR))

    def forward(self, h: torch.Tensor, maps: list[torch.Tensor]) -> torch.Tensor:
        maps = maps[self.first:]
        size = maps[0].shape[-2:]
        x = self.lateral[0](maps[0])
        for lateral, m in zip(self.lateral[1:], maps[1:]):
            x = x + F.interpolate(lateral(m), size=size, mode="nearest")
        x = self.mix(x)
        return torch.cat([self.heat(x), self.box(x)], dim=1)


def centres(target: torch.Tensor, grid: tuple[int, int], canvas: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Where each target box ``(n, K, 5)`` (class, x0, y0, x1, y1 in canvas pixels; class −1: padding) falls on a
    ``grid`` (h, w) over the canvas (height, width): its cell, offset in it and size in cells."""
    h, w = grid
    sx, sy = canvas[1] / w, canvas[0] / h
    valid = target[..., 0] >= 0
    x0, y0, x1, y1 = target[..., 1].float(), target[..., 2].float(), target[..., 3].float(), target[..., 4].float()
    cx, cy = (x0 + x1) / 2 / sx, (y0 + y1) / 2 / sy
    ix, iy = cx.floor().clamp(0, w - 1), cy.floor().clamp(0, h - 1)
    bw, bh = ((x1 - x0) / sx).clamp(min=1e-3), ((y1 - y0) / sy).clamp(min=1e-3)
    return {"valid": valid, "cls": target[..., 0].long().clamp(min=0), "ix": ix, "iy": iy,
            "offset": torch.stack([cx - ix, cy - iy], -1), "size": torch.stack([bw.log(), bh.log()], -1),
            "bw": bw, "bh": bh}


def heat_target(c: dict[str, torch.Tensor], classes: int, grid: tuple[int, int]) -> torch.Tensor:
    """``(n, classes, h, w)``: per class the highest of its boxes' Gaussians, exactly 1 at each box's cell."""
    h, w = grid
    n, k = c["valid"].shape
    ys = torch.arange(h, device=c["ix"].device, dtype=torch.float32).view(1, 1, h, 1)
    xs = torch.arange(w, device=c["ix"].device, dtype=torch.float32).view(1, 1, 1, w)
    sx = (c["bw"] * SIGMA).clamp(min=0.5)[..., None, None]
    sy = (c["bh"] * SIGMA).clamp(min=0.5)[..., None, None]
    g = torch.exp(-((xs - c["ix"][..., None, None]) ** 2 / (2 * sx**2) + (ys - c["iy"][..., None, None]) ** 2
                    / (2 * sy**2))) * c["valid"][..., None, None]
    rows = (torch.arange(n, device=g.device)[:, None] * classes + c["cls"]).view(n * k, 1).expand(n * k, h * w)
    heat = torch.zeros(n * classes, h * w, device=g.device)
    heat = heat.scatter_reduce(0, rows, g.reshape(n * k, h * w), reduce="amax")
    return heat.view(n, classes, h, w)


class BoxesLoss(nn.Module):
    """CenterNet's penalty-reduced focal loss on the heat-maps plus L1 on offset and log size at the centres."""

    def __init__(self, classes: int, canvas: tuple[int, int]) -> None:
        super().__init__()
        self.classes, self.canvas = classes, canvas

    def forward(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        grid = (int(raw.shape[-2]), int(raw.shape[-1]))
        c = centres(target.to(raw.device), grid, self.canvas)
        logits = raw[:, : self.classes].float()
        with torch.no_grad():
            truth = heat_target(c, self.classes, grid)
        positive = truth >= 1.0
        p = torch.sigmoid(logits)
        pos = ((1 - p) ** 2 * F.logsigmoid(logits))[positive].sum()
        neg = ((1 - truth) ** 4 * p**2 * F.logsigmoid(-logits))[~positive].sum()
        count = c["valid"].sum().clamp(min=1)
        focal = -(pos + neg) / count
        index = (c["iy"] * grid[1] + c["ix"]).long()  # (n, K)
        regress = raw[:, self.classes:].float().flatten(2)  # (n, 4, h*w)
        at = regress.gather(2, index[:, None, :].expand(-1, 4, -1)).transpose(1, 2)  # (n, K, 4)
        wanted = torch.cat([c["offset"], c["size"]], -1)
        l1 = (F.l1_loss(at, wanted, reduction="none").sum(-1) * c["valid"]).sum() / count
        return focal + l1
