"""Non-maximum suppression and box IoU in plain torch (no torchvision), run after the network, never inside it."""

from __future__ import annotations

import numpy as np
import torch

BLOCK = 2048  # rows of the IoU matrix computed at once: 8,000 boxes never need a 256 MB float matrix


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU ``(len(a), len(b))`` of boxes (x0, y0, x1, y1)."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float = 0.5) -> torch.Tensor:
    """Indices of the boxes greedy NMS keeps, highest score first: a box is dropped when it overlaps a kept,
    higher-scoring box by more than ``iou``."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    order = torch.argsort(scores, descending=True, stable=True)
    ordered = boxes[order].double()
    # Only a higher-scoring box can suppress: the upper triangle of the overlap matrix, as booleans, in blocks.
    over = np.zeros((len(order), len(order)), dtype=bool)
    for start in range(0, len(order), BLOCK):
        block = box_iou(ordered[start:start + BLOCK], ordered) > iou
        over[start:start + BLOCK] = np.triu(block.numpy(), k=start + 1)  # row r of the block is box start + r
    alive = np.ones(len(order), dtype=bool)
    kept = []
    for i in range(len(order)):
        if alive[i]:
            kept.append(i)
            alive &= ~over[i]
    return order[torch.as_tensor(kept, dtype=torch.long)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou: float = 0.5) -> torch.Tensor:
    """NMS within each label: boxes of different labels are moved apart so they never overlap."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    shift = labels.to(boxes.dtype)[:, None] * (boxes.max() + 1)
    return nms(boxes + shift, scores, iou)
