"""``lamina faces PHOTOS -o CROPS``: every face MTCNN finds in each photo, aligned by its five landmarks and saved
as a square PNG, with one JSON file of boxes, scores and landmarks in the photo's own pixels."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from lamina.data.folders import IMAGE_EXTENSIONS
from lamina.errors import LaminaError
from lamina.inputs.image_faces_align import align
from lamina.inputs.image_faces_detect import Detector

log = logging.getLogger("lamina")
INDEX = "faces.json"


def photo_files(photos: Path) -> tuple[Path, list[Path]]:
    """The folder paths are relative to, and the image files (a single file, or a folder searched recursively)."""
    if photos.is_file():
        return photos.parent, [photos]
    if not photos.is_dir():
        raise LaminaError(f"{photos}: no such file or folder; give a photo or a folder of photos")
    files = sorted(p for p in photos.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise LaminaError(f"{photos}: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) in this folder")
    return photos, files


def read_rgb(path: Path) -> Image.Image | None:
    try:
        with Image.open(path) as image:
            return ImageOps.exif_transpose(image).convert("RGB")
    except Exception as error:  # one bad photo in a folder is named and left out, not fatal
        log.warning("%s: not a readable image (%s); left out", path, error)
        return None


def _record(image: Image.Image, detector: Detector, stem: str, out: Path, side: int) -> list[dict[str, Any]]:
    found = detector.detect(np.asarray(image))
    faces = []
    for i in range(len(found)):
        crop = f"{stem}_{i}.png"
        target = out / crop
        target.parent.mkdir(parents=True, exist_ok=True)
        align(image, found.landmarks[i], side).save(target)
        faces.append({"box": [round(float(v), 1) for v in found.boxes[i]], "score": round(float(found.scores[i]), 4),
                      "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in found.landmarks[i]],
                      "crop": crop})
    return faces


def find_faces(photos: Path, out: Path, side: int = 112, min_face: int = 20) -> str:
    if side < 16 or min_face < 12:
        raise LaminaError(f"--size {side} / --min-face {min_face}: crops need 16 pixels or more, faces 12 or more")
    base, files = photo_files(photos)
    detector = Detector(min_face=min_face)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for path in files:
        image = read_rgb(path)
        if image is None:
            continue
        rel = path.relative_to(base)
        records.append({"file": str(rel), "width": image.width, "height": image.height,
                        "faces": _record(image, detector, str(rel.with_suffix("")), out, side)})
    tmp = out / f".{INDEX}.tmp"
    tmp.write_text(json.dumps({"detector": "mtcnn", "crop_side": side, "photos": records}, indent=1),
                   encoding="utf-8")
    os.replace(tmp, out / INDEX)
    total = sum(len(r["faces"]) for r in records)
    return f"wrote {total} aligned faces from {len(records)} photos to {out} (boxes and landmarks: {out / INDEX})"
