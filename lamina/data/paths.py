"""File paths inside a table (image columns) are relative to the table's folder, so a data folder can move."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd


def resolve_paths(frame: pd.DataFrame, columns: Iterable[str], base_dir: str | os.PathLike) -> pd.DataFrame:
    """A copy of ``frame`` whose relative paths in ``columns`` are made absolute against ``base_dir``.

    Missing values stay missing; columns the frame lacks are left for the column check to report.
    """
    base = Path(base_dir).expanduser().resolve()
    present = [c for c in columns if c in frame.columns]
    if not present:
        return frame
    frame = frame.copy()
    for column in present:
        frame[column] = frame[column].map(
            lambda v: v if pd.isna(v) or Path(os.path.expanduser(str(v))).is_absolute()
            else str(base / os.path.expanduser(str(v))),
        ).astype(object)
    return frame


def path_columns(inputs: Iterable[tuple[str, type]]) -> list[str]:
    """The names of the columns whose type holds file paths, from (name, type class) pairs."""
    return [name for name, kind in inputs if getattr(kind, "holds_paths", False)]
