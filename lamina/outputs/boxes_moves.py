"""Boxes moved with their pixels (training's geometric augmentation, ``lamina.training.moves``).

``theta`` maps output pixels to input pixels (``F.affine_grid``, in [-1, 1], align_corners False), so a box's
corners move through its inverse; the moved box is the corners' bounding box, clipped to the picture, and a box
that mostly left the picture is dropped (class −1).
"""

from __future__ import annotations

import torch

KEEP = 0.4  # a moved box is kept when at least this share of it is still in the picture


def move_boxes(target: torch.Tensor, theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``target`` (n, K, 5): class, x0, y0, x1, y1 in pixels of pictures ``size`` (height, width)."""
    h, w = size
    theta = theta.to(target.device, torch.float32)
    a, t = theta[:, :, :2], theta[:, :, 2:]
    inverse = torch.linalg.inv(a)  # (n, 2, 2)
    x0, y0, x1, y1 = target[..., 1], target[..., 2], target[..., 3], target[..., 4]
    corners = torch.stack([torch.stack([x0, y0], -1), torch.stack([x1, y0], -1),
                           torch.stack([x0, y1], -1), torch.stack([x1, y1], -1)], 2)  # (n, K, 4, 2)
    scale = torch.tensor([w, h], dtype=torch.float32, device=target.device)
    norm = corners / scale * 2 - 1
    moved = torch.einsum("nij,nkcj->nkci", inverse, norm - t[:, None, None, :, 0])
    pixels = (moved + 1) / 2 * scale
    low, high = pixels.min(2).values, pixels.max(2).values  # (n, K, 2)
    area = (high - low).prod(-1)
    low_c, high_c = low.clamp(min=0), torch.minimum(high, scale)
    inside = (high_c - low_c).clamp(min=0).prod(-1)
    keep = (target[..., 0] >= 0) & (inside >= KEEP * area.clamp(min=1e-6)) & ((high_c - low_c) >= 1).all(-1)
    out = torch.cat([target[..., :1], low_c, high_c], -1)
    out[..., 0] = torch.where(keep, target[..., 0], torch.full_like(target[..., 0], -1.0))
    return out
