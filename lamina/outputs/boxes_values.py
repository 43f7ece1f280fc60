"""What a boxes target value is, and where its boxes land in the network's picture.

A value is one image's objects: ``{"width": W, "height": H, "boxes": [[x0, y0, x1, y1, "label"], ...]}`` in the
image file's pixels (or that object as JSON text, which is how CSV and Parquet tables keep it). The image input
letterboxes (``pad``) or centre-crops (``crop``) every picture to one canvas, so the boxes are mapped the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from lamina.errors import LaminaError


@dataclass(frozen=True)
class Objects:
    """One image's boxes ``(m, 4)`` (x0, y0, x1, y1) in its own pixels, their labels and the image's size."""

    width: int
    height: int
    boxes: np.ndarray
    labels: list[str]


def parse(value: Any, name: str, row: int) -> Objects:
    """A target value as ``Objects``; anything else is one line naming the column and row."""
    where = f"target '{name}', row {row + 1}"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise LaminaError(f"{where}: not JSON ({error.msg}); write {{\"width\": W, \"height\": H, \"boxes\": "
                              "[[x0, y0, x1, y1, label], ...]}") from None
    if not isinstance(value, dict) or not {"width", "height", "boxes"} <= set(value):
        raise LaminaError(f"{where}: a boxes value is {{\"width\": W, \"height\": H, \"boxes\": [[x0, y0, x1, y1, "
                          "label], ...]}")
    width, height, rows = value["width"], value["height"], value["boxes"]
    if not (isinstance(width, (int, float)) and isinstance(height, (int, float)) and width > 0 and height > 0):
        raise LaminaError(f"{where}: width and height must be positive numbers, not {width!r} and {height!r}")
    if not isinstance(rows, list):
        raise LaminaError(f"{where}: boxes must be a list of [x0, y0, x1, y1, label]")
    boxes = np.zeros((len(rows), 4), np.float64)
    labels = []
    for k, box in enumerate(rows):
        if not (isinstance(box, (list, tuple)) and len(box) == 5
                and all(isinstance(c, (int, float)) for c in box[:4])):
            raise LaminaError(f"{where}, box {k + 1}: write [x0, y0, x1, y1, label], not {box!r}")
        x0, y0, x1, y1 = (float(c) for c in box[:4])
        if not (0 <= x0 < x1 <= width + 0.5 and 0 <= y0 < y1 <= height + 0.5):
            raise LaminaError(f"{where}, box {k + 1} {[x0, y0, x1, y1]}: outside its {int(width)}x{int(height)} "
                              "image or empty; fix the box")
        boxes[k] = (x0, y0, x1, y1)
        labels.append(str(box[4]))
    return Objects(int(width), int(height), boxes, labels)


def value_of(width: int, height: int, boxes: list[tuple[float, float, float, float, str]]) -> str:
    """The JSON text of one image's objects (how readers write the column)."""
    return json.dumps({"width": int(width), "height": int(height),
                       "boxes": [[round(float(c), 2) for c in b[:4]] + [str(b[4])] for b in boxes]})


def placement(width: int, height: int, canvas: tuple[int, int], resize: str) -> tuple[float, float, float, float]:
    """Scale x, scale y and offsets x, y mapping an image's pixels to the canvas (height, width), exactly as Pillow's
    ``ImageOps.pad`` (rounded sizes, centred) or ``ImageOps.fit`` (centre crop) place it."""
    ch, cw = canvas
    if (width, height) == (cw, ch):
        return 1.0, 1.0, 0.0, 0.0
    if resize == "crop":
        scale = max(cw / width, ch / height)
        return scale, scale, (cw - width * scale) / 2, (ch - height * scale) / 2
    if width / height > cw / ch:
        new_w, new_h = cw, round(height / width * cw)
    elif width / height < cw / ch:
        new_w, new_h = round(width / height * ch), ch
    else:
        new_w, new_h = cw, ch
    return new_w / width, new_h / height, float(round((cw - new_w) / 2)), float(round((ch - new_h) / 2))


def to_canvas(objects: Objects, canvas: tuple[int, int], resize: str) -> np.ndarray:
    """The boxes ``(m, 4)`` in canvas pixels, clipped to it (a crop may cut them)."""
    sx, sy, ox, oy = placement(objects.width, objects.height, canvas, resize)
    b = objects.boxes * np.array([sx, sy, sx, sy]) + np.array([ox, oy, ox, oy])
    return np.clip(b, 0, np.array([canvas[1], canvas[0], canvas[1], canvas[0]], dtype=np.float64))


def from_canvas(boxes: np.ndarray, width: int, height: int, canvas: tuple[int, int], resize: str) -> np.ndarray:
    """Canvas boxes back in an image's own pixels (what ``lamina predict`` writes)."""
    sx, sy, ox, oy = placement(width, height, canvas, resize)
    b = (np.asarray(boxes, np.float64) - np.array([ox, oy, ox, oy])) / np.array([sx, sy, sx, sy])
    return np.clip(b, 0, np.array([width, height, width, height], dtype=np.float64))
