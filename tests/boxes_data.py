"""A small COCO-format detection set made of real digit images (scikit-learn's digits) pasted onto noisy canvases:
the boxes are exact, the classes are the digits. Written by tests, never shipped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

CLASSES = ["0", "1", "7"]


def write_coco(folder: Path, images: int = 40, size: tuple[int, int] = (64, 48), seed: int = 0) -> Path:
    """``folder/annotations.json`` and ``folder/images/*.png``: 1-3 digits (0, 1, 7) per canvas, each 12-20 px."""
    rng = np.random.default_rng(seed)
    digits = load_digits()
    pools = {c: np.flatnonzero(digits.target == int(c)) for c in CLASSES}
    (folder / "images").mkdir(parents=True, exist_ok=True)
    width, height = size
    coco: dict = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": c}
                                                                  for i, c in enumerate(CLASSES)]}
    for n in range(images):
        canvas = rng.normal(40, 12, (height, width)).clip(0, 255)
        taken: list[tuple[int, int, int, int]] = []
        for _ in range(int(rng.integers(1, 4))):
            c = int(rng.integers(len(CLASSES)))
            side = int(rng.integers(12, 21))
            for _attempt in range(20):
                x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
                if all(x + side <= a or a + s <= x or y + side <= b or b + s <= y for a, b, s, _ in taken):
                    break
            else:
                continue
            glyph = digits.images[rng.choice(pools[CLASSES[c]])] * 255 / 16
            patch = np.asarray(Image.fromarray(glyph.astype(np.uint8)).resize((side, side), Image.BILINEAR), float)
            canvas[y:y + side, x:x + side] = np.maximum(canvas[y:y + side, x:x + side], patch)
            taken.append((x, y, side, c))
            rows, cols = np.flatnonzero((patch > 64).any(1)), np.flatnonzero((patch > 64).any(0))
            box = [x + int(cols[0]), y + int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": n + 1, "category_id": c + 1,
                                        "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
        name = f"images/{n:03d}.png"
        Image.fromarray(canvas.astype(np.uint8), "L").save(folder / name)
        coco["images"].append({"id": n + 1, "file_name": name, "width": width, "height": height})
    path = folder / "annotations.json"
    path.write_text(json.dumps(coco))
    return path
