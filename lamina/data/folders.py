"""A folder of images as a table: ``photos/<class>/<file>`` → columns ``image`` (absolute path) and ``label``.
A folder of audio clips (``clips/<word>/<file>.wav``) gives ``audio`` and ``label`` the same way; one folder holds
one kind of file.

A flat folder of images (no class subfolders) gives only the ``image`` column, for prediction. A folder holding
``images/`` and ``masks/`` (files of the same names) gives ``image`` and ``masks``: scans and their segmentations.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lamina.errors import LaminaError, where

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".dcm", ".dicom"}
MASK_FOLDERS = ("masks", "mask")  # scans/images/* beside scans/masks/*: a segmentation set
IMAGE_COLUMN, LABEL_COLUMN = "image", "label"
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg"}
AUDIO_COLUMN = "audio"


def is_image_file(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def is_audio_file(name: str) -> bool:
    return Path(name).suffix.lower() in AUDIO_EXTENSIONS


def _is_media(name: str) -> bool:
    return is_image_file(name) or is_audio_file(name)


def _paired(folder: Path) -> pd.DataFrame | None:
    """``images/*`` beside ``masks/*`` with the same names (the suffix may differ: a DICOM scan, a PNG mask) →
    columns ``image`` and the masks folder's name; None for any other layout."""
    images, masks = folder / "images", next((folder / m for m in MASK_FOLDERS if (folder / m).is_dir()), None)
    if not images.is_dir() or masks is None:
        return None
    by_stem = {p.stem: p for p in sorted(masks.iterdir()) if p.is_file() and is_image_file(p.name)}
    scans = [p for p in sorted(images.iterdir()) if p.is_file() and is_image_file(p.name)]
    unmatched = [p.name for p in scans if p.stem not in by_stem]
    if unmatched:
        raise LaminaError(where(str(folder), f"image {unmatched[0]} has no mask of the same name in {masks.name}/ "
                                f"({len(unmatched)} of {len(scans)} images lack one); add the masks or move the "
                                "images out"))
    return pd.DataFrame({IMAGE_COLUMN: [str(p.resolve()) for p in scans],
                         masks.name: [str(by_stem[p.stem].resolve()) for p in scans]})


def read_folder(folder: Path) -> pd.DataFrame:
    """Image files directly in ``folder`` (no label) and in its subfolders (labelled by the subfolder's name), or
    ``images/`` beside ``masks/`` (a segmentation set: image and mask columns)."""
    paired = _paired(folder)
    if paired is not None:
        return paired
    visible = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    rows: list[tuple[str, str | None]] = [
        (str(p.resolve()), None) for p in visible if p.is_file() and _is_media(p.name)
    ]
    for sub in (p for p in visible if p.is_dir()):
        rows += [(str(f.resolve()), sub.name) for f in sorted(sub.rglob("*")) if f.is_file() and _is_media(f.name)
                 and not any(part.startswith(".") for part in f.relative_to(sub).parts)]
    if not rows:
        known = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise LaminaError(where(str(folder), f"is a directory with no image files ({known}) nor audio files "
                                f"({', '.join(sorted(AUDIO_EXTENSIONS))}); point to a data file, or put images or "
                                "clips in it, one subfolder per class for training"))
    audio = [is_audio_file(path) for path, _ in rows]
    if any(audio) and not all(audio):
        image = next(Path(path).name for path, _ in rows if is_image_file(path))
        clip = next(Path(path).name for path, _ in rows if is_audio_file(path))
        raise LaminaError(where(str(folder), f"mixes images (e.g. {image}) and audio files (e.g. {clip}); keep one "
                                "kind of file per folder, or list both in a table with one column each"))
    column = AUDIO_COLUMN if audio[0] else IMAGE_COLUMN
    frame = pd.DataFrame(rows, columns=[column, LABEL_COLUMN])
    if frame[LABEL_COLUMN].isna().all():
        return frame[[column]]
    if frame[LABEL_COLUMN].isna().any():
        loose = frame[column][frame[LABEL_COLUMN].isna()].iloc[0]
        kind = "clip" if audio[0] else "image"
        raise LaminaError(where(str(folder), f"mixes {kind}s outside class subfolders (e.g. {Path(loose).name}) with "
                                f"class subfolders; move every {kind} into its class's subfolder"))
    return frame
