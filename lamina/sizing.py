"""How long a first model may train: ``lamina init`` sizes the epochs, the time budget and the image encoder's
width from the data, so a first model comes back in minutes whatever the data's size.

>>> size_training(frame, infer(frame, ["label"]), Path(".")).epochs  # doctest: +SKIP
100
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd


class TypedColumns(Protocol):
    """What sizing reads of ``lamina.infer.Inferred`` (named here so the two modules do not import each other)."""

    inputs: list[tuple[str, str]]

# A first model should come back in minutes whatever the data's size: `lamina init` estimates an epoch's seconds from
# the rows and what one row costs to train, and writes a time budget, an epoch count and (for images) an encoder
# width that fit it. The costs are microseconds to train one row on one CPU core, per unit of each input, measured
# on this project's shared 2-core machine (28×28 greyscale digits: 3.3 ms a row with widths [32, 64, 128], 1.4 ms
# with [16, 32, 64]); a faster machine only finishes early.
TIME_LIMIT = 600.0  # seconds: the budget for data that needs it
SHORT_TIME_LIMIT = 300.0  # when the default epochs fit in it: enough, and it still guards a slow machine
DEFAULT_EPOCHS, MIN_EPOCHS = 100, 3
WIDE_EPOCHS = 20  # the default image encoder when this many epochs of it fit the budget, else the narrow one
NARROW_WIDTHS = [16, 32, 64]
ROW_US = 30.0  # per row: the batch's share of the step, the hidden layers and heads
UNIT_US = {"pixel": 4.2, "narrow pixel": 1.8, "token": 2.0, "reading": 1.0, "column": 2.0}
SAMPLE = 50  # files or cells looked at per column


@dataclass
class Sizing:
    epochs: int
    time_limit: float
    image_widths: list[int] | None  # when not the image type's default
    note: str  # the YAML comment saying why


def _sample(values: pd.Series) -> pd.Series:
    present = values.dropna()
    return present.iloc[np.linspace(0, len(present) - 1, min(SAMPLE, len(present))).astype(int)] if len(present) else present


def _image_values(values: pd.Series, base_dir: Path) -> float:
    """Pixels × channels of the size the image type will pick (median of a sample, capped as it caps it)."""
    from PIL import Image

    from lamina.inputs.image import GRAY_MODES, MAX_AUTO_SIZE

    from lamina.inputs.image_dicom import header, is_dicom

    sizes, gray = [], True
    for value in _sample(values):
        path = base_dir / os.path.expanduser(value)
        if is_dicom(str(path)):  # its header says the size without decoding the pixels
            found = header(str(path))
            if found is not None:
                sizes.append((found[2], found[1]))
                gray = gray and found[0] == 1
            continue
        try:
            with Image.open(base_dir / os.path.expanduser(value)) as image:
                sizes.append(image.size)
                gray = gray and image.mode in GRAY_MODES
        except (OSError, ValueError):
            continue
    if not sizes:
        return MAX_AUTO_SIZE * MAX_AUTO_SIZE * 3.0
    side = float(np.median([max(w, h) for w, h in sizes]))
    other = float(np.median([min(w, h) for w, h in sizes]))
    shrink = max(side / MAX_AUTO_SIZE, 1.0)
    return (side / shrink) * (other / shrink) * (1 if gray else 3)


def _units(value: object) -> int:
    """Words of a text, or readings of a series: an array's own size (its str() would be numpy's abbreviated
    ``[1. 2. ... 9.]``), else the comma- or space-separated parts of its text."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return int(np.size(value))
    return len(str(value).replace(",", " ").split())


def _row_cost(frame: pd.DataFrame, inferred: TypedColumns, base_dir: Path, narrow: bool) -> tuple[float, float]:
    """Microseconds to train one row, and the image pixels in it (0 without images)."""
    cost, pixels = ROW_US, 0.0
    for column, kind in inferred.inputs:
        if kind == "image":
            pixels += _image_values(frame[column], base_dir)
        elif kind in ("text", "timeseries"):  # words, or readings of a series
            units = _sample(frame[column]).map(_units).mean()
            cost += float(units or 0) * UNIT_US["token" if kind == "text" else "reading"]
        elif kind == "audio":  # 100 mel frames of 40 bins a second, up to the audio type's 10 s cap
            cost += 100 * 40 * 2.0 * UNIT_US["reading"]
        else:
            cost += UNIT_US["column"]
    return cost + pixels * UNIT_US["narrow pixel" if narrow else "pixel"], pixels


def size_training(frame: pd.DataFrame, inferred: TypedColumns, base_dir: Path, train_share: float = 0.7) -> Sizing:
    """The epochs, time limit and image encoder width that fit the data's size (see the note above)."""
    rows = max(1, round(len(frame) * train_share))
    cost, pixels = _row_cost(frame, inferred, base_dir, narrow=False)
    epoch = rows * cost * 1e-6 * 1.15  # and the validation pass
    widths = None
    if pixels and epoch * WIDE_EPOCHS > TIME_LIMIT:
        widths = NARROW_WIDTHS
        cost = _row_cost(frame, inferred, base_dir, narrow=True)[0]
        epoch = rows * cost * 1e-6 * 1.15
    limit = SHORT_TIME_LIMIT if epoch * DEFAULT_EPOCHS <= SHORT_TIME_LIMIT else TIME_LIMIT
    epochs = int(min(DEFAULT_EPOCHS, max(MIN_EPOCHS, limit * 0.9 // epoch)))
    encoder = f" with image widths {widths}" if widths else ""
    seconds = f"{epoch:.0f}" if epoch >= 10 else f"{epoch:.2g}"
    note = (f"sized from the data: {rows} training rows at ~{cost * 1e-3:.2g} ms a row{encoder} ≈ {seconds} s an "
            f"epoch on one CPU core, so {epochs} epochs and a {limit / 60:g}-minute budget (the schedule ends and "
            "training stops when it is spent)")
    return Sizing(epochs, limit, widths, note)
