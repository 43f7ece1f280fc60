"""Non-maximum suppression and box IoU in plain torch (no torchvision), run after the network, never inside it."""

from __future__ import annotations

import torch

# Alive boxes taken at once in score order: each block is settled among itself on a small dense matrix, then its kept
# boxes suppress the later boxes they overlap, found by sorting on x0 rather than by an n x n matrix.
BLOCK = 256


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


def _pair_over(c: tuple[torch.Tensor, ...], a: torch.Tensor, b: torch.Tensor, iou: float) -> torch.Tensor:
    """The boxes of ``b`` that the box of ``a`` beside them overlaps by more than ``iou``; ``c``: x0, y0, x1, y1,
    area."""
    x0, y0, x1, y1, area = c
    height = (torch.minimum(y1[a], y1[b]) - torch.maximum(y0[a], y0[b]))
    near = height > 0  # most pairs that overlap in x do not in y: drop them before gathering the rest
    a, b, height = a[near], b[near], height[near]
    width = (torch.minimum(x1[a], x1[b]) - torch.maximum(x0[a], x0[b])).clamp_(min=0)
    inter = width.mul_(height)
    return b[inter > (area[a] + area[b] - inter).mul_(iou)]  # IoU > iou without a division


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU ``(len(a), len(b))`` of boxes (x0, y0, x1, y1)."""
    inter, union = _parts(a, b)
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def _ranges(sorted_x0: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, right: bool) -> tuple[torch.Tensor, ...]:
    """Pairs (query q, position p) with ``lo[q] <= sorted_x0[p] < hi[q]`` (``<`` on the left when ``right``)."""
    start = torch.searchsorted(sorted_x0, lo, right=right)
    count = (torch.searchsorted(sorted_x0, hi) - start).clamp_(min=0)
    query = torch.repeat_interleave(torch.arange(len(lo)), count)
    offset = torch.arange(len(query)) - torch.repeat_interleave(count.cumsum(0) - count, count)
    return query, start[query] + offset


def _settle(boxes: torch.Tensor, iou: float) -> torch.Tensor:
    """Greedy NMS among a few boxes in score order, as Cluster-NMS: iterate to its unique fixed point."""
    inter, union = _parts(boxes, boxes)
    over = torch.triu(inter > union.mul_(iou), diagonal=1)  # only a higher-scoring box can suppress
    keep = torch.ones(len(boxes), dtype=torch.bool)
    for _ in range(len(boxes)):  # each pass settles at least one more box; usually two or three passes
        new = ~(over & keep[:, None]).any(0)
        if torch.equal(new, keep):
            break
        keep = new
    return keep


def _suppress(c: tuple[torch.Tensor, ...], kept: torch.Tensor, later: torch.Tensor, iou: float) -> torch.Tensor:
    """The boxes of ``later`` (indices in x0 order) that a box of ``kept`` overlaps by more than ``iou``."""
    x0, x1 = c[0], c[2]
    kept = kept[torch.argsort(x0[kept])]
    kept_x0, later_x0 = x0[kept], x0[later]
    # IoU > t needs an x overlap above t times either width (inter > t * area, inter <= overlap * height), so a
    # box can only be suppressed by one it starts inside, short of the last t of its width, or the other way round.
    k, p = _ranges(later_x0, kept_x0, x1[kept] - iou * (x1[kept] - kept_x0), right=False)
    q, r = _ranges(kept_x0, later_x0, x1[later] - iou * (x1[later] - later_x0), right=True)
    first, second = torch.cat([kept[k], kept[r]]), torch.cat([later[p], later[q]])
    return _pair_over(c, first, second, iou)


def _greedy(ordered: torch.Tensor, iou: float, overlap: str) -> torch.Tensor:
    """The plain greedy loop over the whole overlap matrix, for ``overlap="min"``: the x-sorted search below relies
    on IoU's geometry, and MTCNN's last stage, its one user, has tens of boxes."""
    inter, union = _parts(ordered, ordered, overlap)
    over = torch.triu(inter > union.mul_(iou), diagonal=1)  # only a higher-scoring box can suppress
    alive = torch.ones(len(ordered), dtype=torch.bool)
    for i in range(len(ordered)):
        if alive[i]:
            alive &= ~over[i]
    return alive


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float = 0.5, overlap: str = "iou") -> torch.Tensor:
    """Indices of the boxes greedy NMS keeps, highest score first: a box is dropped when it overlaps a kept,
    higher-scoring box by more than ``iou`` (intersection over union, or over the smaller area: ``overlap="min"``)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    order = torch.argsort(scores, descending=True, stable=True)
    ordered = boxes[order].double()
    if overlap == "min":
        return order[_greedy(ordered, iou, overlap).nonzero().squeeze(1)]
    n = len(order)
    by_x0 = torch.argsort(ordered[:, 0], stable=True)  # rank indices sorted by x0, filtered per block below
    alive = torch.ones(n, dtype=torch.bool)
    x0, y0, x1, y1 = ordered.T.contiguous()
    columns = (x0, y0, x1, y1, (x1 - x0).clamp(min=0) * (y1 - y0).clamp(min=0))
    start = 0
    while start < n:
        # The next BLOCK boxes still alive: once a few blocks have suppressed most boxes, few blocks remain.
        block = alive[start:].nonzero().squeeze(1)[:BLOCK] + start
        if not len(block):
            break
        keep = _settle(ordered[block], iou)
        alive[block[~keep]] = False
        start = int(block[-1]) + 1
        later = by_x0[(by_x0 >= start) & alive[by_x0]]
        if len(later):
            alive[_suppress(columns, block[keep], later, iou)] = False
    return order[alive.nonzero().squeeze(1)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou: float = 0.5,
                overlap: str = "iou") -> torch.Tensor:
    """NMS within each label: boxes of different labels are moved apart so they never overlap."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    shift = labels.to(boxes.dtype)[:, None] * (boxes.max() + 1)
    return nms(boxes + shift, scores, iou, overlap)
