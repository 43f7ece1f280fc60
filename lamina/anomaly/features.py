"""What the anomaly networks and the classical detectors read: every input's classical features (the type's own
``classical_features``: scaled numbers with missing flags, one-hot categories, a series' summary statistics),
side by side, standardised with the training rows' mean and spread. A type whose features need a fitted
vocabulary of their own (text TF-IDF, image HOG) is not read here."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import issparse

from lamina.errors import LaminaError

MIN_SCALE = 1e-6  # a feature constant in training stays 0 rather than dividing by nothing


def raw_features(inputs: list[Any], frame: pd.DataFrame, source: str | None) -> np.ndarray:
    blocks = []
    for t in inputs:
        for block in t.classical_features(frame[t.name]).linear:
            if issparse(block):
                raise LaminaError(f"{source or 'data'}: input {t.name!r} (type {t.kind}) has sparse features; the "
                                  "anomaly task reads numbers, categories, binary columns, sets and series")
            blocks.append(np.asarray(block, dtype=np.float64).reshape(len(frame), -1))
    return np.nan_to_num(np.concatenate(blocks, axis=1), nan=0.0, posinf=0.0, neginf=0.0)


def fit_scaling(x: np.ndarray) -> dict[str, list[float]]:
    return {"mean": x.mean(0).tolist(), "scale": np.maximum(x.std(0), MIN_SCALE).tolist()}


def scaled(x: np.ndarray, scaling: dict[str, list[float]]) -> np.ndarray:
    return ((x - np.asarray(scaling["mean"])) / np.asarray(scaling["scale"])).astype(np.float32)
