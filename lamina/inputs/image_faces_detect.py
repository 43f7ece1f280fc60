"""MTCNN's cascade: an image pyramid through P-Net, candidates refined by R-Net, then O-Net's boxes and five
landmarks (eyes, nose, mouth corners), with non-maximum suppression between the stages.

The arithmetic follows facenet-pytorch's ``detect_face`` (its pixel conventions included: crops are 1-based and
inclusive as in the original Caffe/Matlab code), so the pretrained weights see what they were trained on; the NMS
is ours (``lamina.outputs.boxes_nms``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch.nn.functional import interpolate

from lamina.inputs.image_faces_nets import load_nets
from lamina.outputs.boxes_nms import nms

STRIDE, CELL = 2, 12  # P-Net scores a 12-pixel window every 2 pixels of its pyramid level
BATCH = 512  # crops per R-/O-Net forward pass


@dataclass(frozen=True)
class Faces:
    """The faces found in one image, most confident first."""

    boxes: np.ndarray  # (n, 4) x0, y0, x1, y1 in the image's pixels
    scores: np.ndarray  # (n,) O-Net's face probability
    landmarks: np.ndarray  # (n, 5, 2) x, y: left eye, right eye, nose, left and right mouth corner

    def __len__(self) -> int:
        return len(self.scores)


def _scales(height: int, width: int, min_face: int, factor: float) -> list[float]:
    """Pyramid levels: the smallest face sought becomes 12 pixels, then shrink by ``factor`` while 12 fit."""
    scale = 12.0 / min_face
    side = min(height, width) * scale
    scales = []
    while side >= 12:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - 127.5) * 0.0078125


def _proposals(pnet: torch.nn.Module, image: torch.Tensor, scale: float, threshold: float) -> torch.Tensor:
    """P-Net's windows at one pyramid level scoring at least ``threshold``: (n, 9) box, score, 4 offsets."""
    height, width = image.shape[2:]
    level = interpolate(image, size=(int(height * scale + 1), int(width * scale + 1)), mode="area")
    offsets, probs = pnet(_normalise(level))
    hit = probs[0, 1] >= threshold
    cells = hit.nonzero().to(offsets.dtype).flip(1)  # (x, y) of each window on the level
    top_left = ((STRIDE * cells + 1) / scale).floor()
    bottom_right = ((STRIDE * cells + CELL) / scale).floor()
    found = torch.cat([top_left, bottom_right, probs[0, 1][hit][:, None], offsets[0][:, hit].T], dim=1)
    return found[nms(found[:, :4], found[:, 4], 0.5)]


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Each box grown to a square about its centre (the next net's input is square)."""
    boxes = boxes.clone()
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(width, height)
    boxes[:, 0] += width * 0.5 - side * 0.5
    boxes[:, 1] += height * 0.5 - side * 0.5
    boxes[:, 2:4] = boxes[:, :2] + side[:, None]
    return boxes


def _regress(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Box corners moved by the net's offsets, in units of the (inclusive) box size."""
    boxes = boxes.clone()
    size = (boxes[:, 2:4] - boxes[:, 0:2] + 1).repeat(1, 2)
    boxes[:, :4] += offsets * size
    return boxes


def _crops(image: torch.Tensor, boxes: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each box's pixels (clipped to the image) resized to ``side``², normalised; and which boxes had any."""
    height, width = image.shape[2:]
    corners = boxes[:, :4].trunc().int().numpy()
    x0, y0 = np.maximum(corners[:, 0], 1), np.maximum(corners[:, 1], 1)
    x1, y1 = np.minimum(corners[:, 2], width), np.minimum(corners[:, 3], height)
    keep = (y1 > y0 - 1) & (x1 > x0 - 1)
    if not keep.any():
        return torch.zeros(0, 3, side, side), torch.from_numpy(keep)
    crops = [interpolate(image[:, :, y0[k] - 1:y1[k], x0[k] - 1:x1[k]], size=(side, side), mode="area")
             for k in np.flatnonzero(keep)]
    return _normalise(torch.cat(crops)), torch.from_numpy(keep)


def _batched(net: torch.nn.Module, crops: torch.Tensor) -> tuple[torch.Tensor, ...]:
    parts = [net(crops[i:i + BATCH]) for i in range(0, max(len(crops), 1), BATCH)]  # an empty batch too
    return tuple(torch.cat(p) for p in zip(*parts))


class Detector:
    """MTCNN with the reference's defaults: faces of ``min_face`` pixels and up, stage thresholds 0.6/0.7/0.7."""

    def __init__(self, min_face: int = 20, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709) -> None:
        self.min_face, self.thresholds, self.factor = min_face, thresholds, factor
        self.pnet, self.rnet, self.onet = load_nets()

    def _stage1(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[2:]
        found = torch.cat([_proposals(self.pnet, image, s, self.thresholds[0])
                           for s in _scales(height, width, self.min_face, self.factor)] or [torch.zeros(0, 9)])
        found = found[nms(found[:, :4], found[:, 4], 0.7)]
        # P-Net's offsets are in units of the exclusive box size (no +1), unlike the later stages'.
        size = (found[:, 2:4] - found[:, 0:2]).repeat(1, 2)
        return _square(torch.cat([found[:, :4] + found[:, 5:9] * size, found[:, 4:5]], dim=1))

    def _stage2(self, image: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        crops, had = _crops(image, boxes, 24)
        boxes = boxes[had]
        offsets, probs = _batched(self.rnet, crops)
        passed = probs[:, 1] > self.thresholds[1]
        boxes = torch.cat([boxes[passed, :4], probs[passed, 1:2]], dim=1)
        keep = nms(boxes[:, :4], boxes[:, 4], 0.7)
        return _square(_regress(boxes[keep], offsets[passed][keep]))

    def _stage3(self, image: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        crops, had = _crops(image, boxes, 48)
        boxes = boxes[had]
        offsets, points, probs = _batched(self.onet, crops)
        passed = probs[:, 1] > self.thresholds[2]
        boxes, points = torch.cat([boxes[passed, :4], probs[passed, 1:2]], dim=1), points[passed]
        size = boxes[:, 2:4] - boxes[:, 0:2] + 1
        landmarks = torch.stack([points[:, :5], points[:, 5:]], dim=2) * size[:, None] + boxes[:, None, :2] - 1
        boxes = _regress(boxes, offsets[passed])
        keep = nms(boxes[:, :4], boxes[:, 4], 0.7, overlap="min")
        return boxes[keep], landmarks[keep]

    @torch.inference_mode()
    def detect(self, pixels: np.ndarray) -> Faces:
        """The faces in an RGB image ``(height, width, 3)`` of uint8."""
        image = torch.from_numpy(np.array(pixels, dtype=np.float32)).permute(2, 0, 1)[None]
        boxes, landmarks = self._stage1(image), torch.zeros(0, 5, 2)
        if len(boxes):
            boxes = self._stage2(image, boxes)
        if len(boxes):
            boxes, landmarks = self._stage3(image, boxes)
        return Faces(boxes[:, :4].numpy().astype(np.float64) if len(boxes) else np.zeros((0, 4)),
                     boxes[:, 4].numpy().astype(np.float64) if len(boxes) else np.zeros(0),
                     landmarks.numpy().astype(np.float64))


@lru_cache(maxsize=1)
def shared_detector() -> Detector:
    """One detector per process for ``faces: detect`` (the nets are read once, not per picture)."""
    return Detector()
