"""Object-detection sets as tables: a COCO JSON file or a YOLO folder → columns ``image`` (absolute path) and
``objects`` (each image's boxes as ``{"width", "height", "boxes": [[x0, y0, x1, y1, label], ...]}`` JSON text, the
boxes output type's value). Every problem names the file and the box: a box outside its image, a category id not in
the categories, a missing image, a file without annotations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from lamina.data.folders import IMAGE_COLUMN, is_image_file
from lamina.errors import LaminaError, where

OBJECTS_COLUMN = "objects"
SLACK = 0.5  # pixels a box may pass its image's edge by (rounding in the tool that drew it)


def is_coco(data: Any) -> bool:
    return isinstance(data, dict) and "images" in data and "annotations" in data


def is_yolo(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "labels").is_dir()


def looks_like_boxes(values: pd.Series) -> bool:
    """Every value is a boxes value (what these readers write)."""
    def one(v: Any) -> bool:
        if isinstance(v, str) and v.startswith("{"):
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                return False
        return isinstance(v, dict) and {"width", "height", "boxes"} <= set(v)
    return len(values) > 0 and all(one(v) for v in values.iloc[:200])


def _value(width: int, height: int, boxes: list[list[Any]]) -> str:
    return json.dumps({"width": int(width), "height": int(height), "boxes": boxes})


def read_coco(name: str, data: dict[str, Any]) -> pd.DataFrame:
    """The COCO document ``data`` read from the file ``name``; image paths are relative to its folder."""
    base = Path(name).resolve().parent
    images, annotations = data.get("images") or [], data.get("annotations") or []
    if not images or not annotations:
        raise LaminaError(where(name, f"has {len(images)} images and {len(annotations)} annotations; a COCO file "
                                "needs both (images, annotations with bbox, categories)"))
    categories = {c.get("id"): str(c.get("name", c.get("id"))) for c in data.get("categories") or []}
    rows: dict[Any, dict[str, Any]] = {}
    for image in images:
        path = base / str(image.get("file_name", ""))
        if not path.is_file():
            raise LaminaError(where(name, f"image {image.get('file_name')!r} (id {image.get('id')}): no such file "
                                    f"in {base}; fix file_name or add the image"))
        width, height = image.get("width"), image.get("height")
        if not width or not height:
            with Image.open(path) as opened:
                width, height = opened.size
        rows[image.get("id")] = {"path": str(path), "width": width, "height": height, "boxes": []}
    for number, a in enumerate(annotations, start=1):
        label = f"annotation {a.get('id', number)}"
        if a.get("category_id") not in categories:
            known = ", ".join(str(k) for k in categories) or "none"
            raise LaminaError(where(name, f"{label}: category_id {a.get('category_id')!r} is not in the categories "
                                    f"list ({known}); add it to categories or fix the annotation"))
        row = rows.get(a.get("image_id"))
        if row is None:
            raise LaminaError(where(name, f"{label}: image_id {a.get('image_id')!r} is not in the images list"))
        box = a.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            raise LaminaError(where(name, f"{label}: bbox {box!r} is not [x, y, width, height]"))
        x, y, w, h = (float(v) for v in box)
        if w <= 0 or h <= 0 or x < -SLACK or y < -SLACK or x + w > row["width"] + SLACK \
                or y + h > row["height"] + SLACK:
            raise LaminaError(where(name, f"{label}: bbox {box} lies outside its {row['width']}x{row['height']} "
                                    f"image {Path(row['path']).name} (or is empty); fix the box"))
        x0, y0 = max(x, 0.0), max(y, 0.0)
        row["boxes"].append([x0, y0, min(x + w, row["width"]), min(y + h, row["height"]), categories[a["category_id"]]])
    return pd.DataFrame({IMAGE_COLUMN: [r["path"] for r in rows.values()],
                         OBJECTS_COLUMN: [_value(r["width"], r["height"], r["boxes"]) for r in rows.values()]})


def _yolo_names(folder: Path) -> dict[int, str]:
    """Class names from ``classes.txt`` (one a line) or ``data.yaml``'s ``names``; else the class numbers."""
    if (folder / "classes.txt").is_file():
        names = [n.strip() for n in (folder / "classes.txt").read_text("utf-8").splitlines() if n.strip()]
        return dict(enumerate(names))
    if (folder / "data.yaml").is_file():
        import yaml

        names = (yaml.safe_load((folder / "data.yaml").read_text("utf-8")) or {}).get("names") or []
        return dict(names) if isinstance(names, dict) else dict(enumerate(str(n) for n in names))
    return {}


def _yolo_boxes(label_file: Path, width: int, height: int, names: dict[int, str]) -> list[list[Any]]:
    boxes = []
    for number, line in enumerate(label_file.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where_ = f"{label_file}: line {number}"
        parts = line.split()
        try:
            c, cx, cy, w, h = int(parts[0]), *(float(v) for v in parts[1:5])
        except (ValueError, IndexError):
            raise LaminaError(f"{where_}: write 'class x_centre y_centre width height' (fractions of the image), not "
                              f"{line.strip()!r}") from None
        if names and c not in names:
            raise LaminaError(f"{where_}: class {c} is not in the class names ({len(names)} of them); fix the line")
        x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        if w <= 0 or h <= 0 or min(x0, y0) < -1e-3 or max(x1, y1) > 1 + 1e-3:
            raise LaminaError(f"{where_}: box {parts[1:5]} lies outside its image (coordinates are fractions in "
                              "[0, 1]); fix the box")
        boxes.append([max(x0, 0) * width, max(y0, 0) * height, min(x1, 1) * width, min(y1, 1) * height,
                      names.get(c, str(c))])
    return boxes


def read_yolo(folder: Path) -> pd.DataFrame:
    """``folder/images/*`` with ``folder/labels/<stem>.txt`` (a missing label file: an image without objects)."""
    names = _yolo_names(folder)
    images = sorted(p for p in (folder / "images").rglob("*") if p.is_file() and is_image_file(p.name))
    if not images:
        raise LaminaError(where(str(folder / "images"), "has no image files; put the pictures there"))
    paths, values, total = [], [], 0
    for image in images:
        with Image.open(image) as opened:
            width, height = opened.size
        label_file = folder / "labels" / image.relative_to(folder / "images").with_suffix(".txt")
        boxes = _yolo_boxes(label_file, width, height, names) if label_file.is_file() else []
        total += len(boxes)
        paths.append(str(image.resolve()))
        values.append(_value(width, height, boxes))
    if not total:
        raise LaminaError(where(str(folder / "labels"), "holds no box for any image; write one "
                                "'class x_centre y_centre width height' line per object"))
    return pd.DataFrame({IMAGE_COLUMN: paths, OBJECTS_COLUMN: values})
