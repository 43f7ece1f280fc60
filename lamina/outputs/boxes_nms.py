"""Non-maximum suppression and box IoU in plain torch (no torchvision), run after the network, never inside it."""

from __future__ import annotations

import numpy as np
import torch

BLOCK = 2048  # rows of the IoU matrix computed at once: 8,000 boxes never need a 256 MB float matrix


def _parts(a: torch.Tensor, b: torch.Tensor, overlap: str = "iou") -> tuple[torch.Tensor, torch.Tensor]:
    """Intersections and unions ``(len(a), len(b))`` of boxes (x0, y0, x1, y1); with ``overlap="min"`` the smaller
    box's area instead of the union (a box inside a larger one then overlaps it fully, as MTCNN's last stage
    wants)."""
    ax0, ay0, ax1, ay1 = a.unbind(1)
    bx0, by0, bx1, by1 = b.unbind(1)
    area_a = (ax1 - ax0).clamp(min=0) * (ay1 - ay0).clamp(min=0)
    area_b = (bx1 - bx0).clamp(min=0) * (by1 - by0).clamp(min=0)
    # One coordinate at a time: broadcasting (n, m, 2) pairs is several times slower on the CPU.
    width = (torch.minimum(ax1[:, None], bx1[None]) - torch.maximum(ax0[:, None], bx0[None])).clamp_(min=0)
    height = (torch.minimum(ay1[:, None], by1[None]) - torch.maximum(ay0[:, None], by0[None])).clamp_(min=0)
    inter = width.mul_(height)
    if overlap == "min":
        return inter, torch.minimum(area_a[:, None], area_b[None, :])
    return inter, area_a[:, None] + area_b[None, :] - inter


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU ``(len(a), len(b))`` of boxes (x0, y0, x1, y1)."""
    inter, union = _parts(a, b)
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float = 0.5, overlap: str = "iou") -> torch.Tensor:
    """Indices of the boxes greedy NMS keeps, highest score first: a box is dropped when it overlaps a kept,
    higher-scoring box by more than ``iou`` (intersection over union, or over the smaller area: ``overlap="min"``)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    order = torch.argsort(scores, descending=True, stable=True)
    ordered = boxes[order].double()
    # Only a higher-scoring box can suppress: the upper triangle of the overlap matrix, as booleans, in blocks.
    over = np.zeros((len(order), len(order)), dtype=bool)
    for start in range(0, len(order), BLOCK):
        inter, union = _parts(ordered[start:start + BLOCK], ordered, overlap)
        block = inter > union.mul_(iou)  # IoU > iou without a division
        over[start:start + BLOCK] = np.triu(block.numpy(), k=start + 1)  # row r of the block is box start + r
    alive = np.ones(len(order), dtype=bool)
    kept = []
    for i in range(len(order)):
        if alive[i]:
            kept.append(i)
            alive &= ~over[i]
    return order[torch.as_tensor(kept, dtype=torch.long)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou: float = 0.5,
                overlap: str = "iou") -> torch.Tensor:
    """NMS within each label: boxes of different labels are moved apart so they never overlap."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    shift = labels.to(boxes.dtype)[:, None] * (boxes.max() + 1)
    return nms(boxes + shift, scores, iou, overlap)
