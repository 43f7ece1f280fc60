"""The ``.ts`` text format of the UCR / UEA time-series archives (as aeon ships them), read into a table Lamina reads.

A file has '#' comments, '@' header lines, then ``@data`` and one row per line: channels separated by ':', readings
by ',', the class label last. Rows may differ in length; '?' or 'NaN' is a missing reading. aeon itself is never
imported (it pulls numba and pins older numpy): its data files are found on disk.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from lamina.errors import LaminaError


def aeon_folder(problem: str) -> Path:
    """The folder of one of the data sets the PyPI package ``aeon`` ships (``BasicMotions``, ``ItalyPowerDemand`` ...)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise LaminaError(f"{problem} ships inside the aeon package: pip install --no-deps aeon")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / problem
    if not folder.is_dir():
        raise LaminaError(f"aeon ships no data set named {problem!r} (looked in {folder.parent})")
    return folder


def _readings(text: str) -> list[float]:
    return [float("nan") if v.strip() in ("?", "") else float(v) for v in text.split(",")]


def read_ts(path: Path, series: str = "series", label: str = "label") -> pd.DataFrame:
    """One row per line: ``series`` a list of readings (one channel) or of per-channel lists, ``label`` a string."""
    rows, data = [], False
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not data:
            data = line.lower().startswith("@data")
            continue
        *channels, target = line.split(":")
        try:
            values = [_readings(c) for c in channels]
        except ValueError as e:
            raise LaminaError(f"{path} line {number}: {e}; readings must be numbers separated by ','") from None
        rows.append({series: values[0] if len(values) == 1 else values, label: target.strip()})
    if not rows:
        raise LaminaError(f"{path}: no rows after @data; is it a .ts file?")
    return pd.DataFrame(rows)


def write_official_split(problem: str, folder: Path) -> tuple[Path, Path]:
    """``train.parquet`` and ``test.parquet`` (columns ``series``, ``label``) in ``folder``: the official split, as a
    user would have the files. Returns their paths."""
    source = aeon_folder(problem)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for part in ("TRAIN", "TEST"):
        frame = read_ts(source / f"{problem}_{part}.ts")
        frame["series"] = [np.asarray(v, dtype=np.float64).tolist() for v in frame["series"]]
        path = folder / f"{part.lower()}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(path)
    return paths[0], paths[1]
