"""A folder of images as a table: ``photos/<class>/<file>`` → columns ``image`` (absolute path) and ``label``.

A flat folder of images (no class subfolders) gives only the ``image`` column, for prediction.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lamina.errors import LaminaError, where

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
IMAGE_COLUMN, LABEL_COLUMN = "image", "label"


def is_image_file(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def read_folder(folder: Path) -> pd.DataFrame:
    """Image files directly in ``folder`` (no label) and in its subfolders (labelled by the subfolder's name)."""
    visible = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    rows: list[tuple[str, str | None]] = [
        (str(p.resolve()), None) for p in visible if p.is_file() and is_image_file(p.name)
    ]
    for sub in (p for p in visible if p.is_dir()):
        rows += [(str(f.resolve()), sub.name) for f in sorted(sub.rglob("*")) if f.is_file() and is_image_file(f.name)
                 and not any(part.startswith(".") for part in f.relative_to(sub).parts)]
    if not rows:
        known = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise LaminaError(where(str(folder), f"is a directory with no image files ({known}); point to a data file, "
                                "or put images in it, one subfolder per class for training"))
    frame = pd.DataFrame(rows, columns=[IMAGE_COLUMN, LABEL_COLUMN])
    if frame[LABEL_COLUMN].isna().all():
        return frame[[IMAGE_COLUMN]]
    if frame[LABEL_COLUMN].isna().any():
        loose = frame[IMAGE_COLUMN][frame[LABEL_COLUMN].isna()].iloc[0]
        raise LaminaError(where(str(folder), f"mixes images outside class subfolders (e.g. {Path(loose).name}) with "
                                "class subfolders; move every image into its class's subfolder"))
    return frame
