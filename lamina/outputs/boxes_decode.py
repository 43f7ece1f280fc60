"""The head's raw maps → boxes: heat-map peaks (a 3×3 max filter), top scores, boxes from the regressions, a
score threshold and per-class NMS (``boxes_nms``), at most ``max_detections`` per image. Runs in torch on the CPU
after the network (or after ONNX Runtime), never inside the exported graph."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from lamina.outputs.boxes_metrics import Detections
from lamina.outputs.boxes_nms import batched_nms


def detect(raw: np.ndarray | torch.Tensor, classes: int, canvas: tuple[int, int], threshold: float,
           max_detections: int, iou: float) -> list[Detections]:
    """One ``Detections`` per row of raw maps ``(n, classes + 4, h, w)``, boxes in canvas pixels."""
    raw = torch.as_tensor(np.asarray(raw, dtype=np.float32))
    n, _, h, w = raw.shape
    sx, sy = canvas[1] / w, canvas[0] / h
    heat = torch.sigmoid(raw[:, :classes])
    heat = heat * (heat == F.max_pool2d(heat, 3, stride=1, padding=1))
    k = min(max_detections, classes * h * w)
    scores, index = heat.flatten(1).topk(k, dim=1)
    labels, cell = index // (h * w), index % (h * w)
    iy, ix = (cell // w).float(), (cell % w).float()
    regress = raw[:, classes:].flatten(2).gather(2, cell[:, None, :].expand(-1, 4, -1))  # (n, 4, k)
    cx, cy = (ix + regress[:, 0]) * sx, (iy + regress[:, 1]) * sy
    bw, bh = regress[:, 2].clamp(max=20).exp() * sx, regress[:, 3].clamp(max=20).exp() * sy
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)
    boxes = torch.minimum(boxes.clamp(min=0), torch.tensor([canvas[1], canvas[0], canvas[1], canvas[0]],
                                                           dtype=boxes.dtype))
    found = []
    for row in range(n):
        keep = scores[row] >= threshold
        b, s, c = boxes[row][keep], scores[row][keep], labels[row][keep]
        kept = batched_nms(b, s, c, iou)[:max_detections]
        found.append(Detections(b[kept].double().numpy(), c[kept].numpy(), s[kept].double().numpy()))
    return found
