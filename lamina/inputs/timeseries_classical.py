"""The classical counterparts of a model whose one input is a series: 1-nearest-neighbour on the type's own
standardised readings, by Euclidean distance and by dynamic time warping (DTW), the time-series archives' reference
classifiers, beside ``lamina compare``'s summary statistics + LightGBM.

* Euclidean: each row resampled (linear interpolation) to the training split's longest length, so rows of
  different lengths compare reading for reading over their whole course;
* DTW: ``dtaidistance`` (C implementation) with a Sakoe-Chiba window of 10 % of the longest training row; skipped,
  with a log line, when the package is missing or the distance matrix would take too long.

A class's score is its nearest training row's distance, turned into probabilities by a softmax scaled per test
row (the median distance), so the predicted class is the 1-NN's and ROC-AUC has a ranking to work with.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import math
import time
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

log = logging.getLogger("lamina")

DTW_WINDOW = 0.1  # of the longest training row
DTW_CELLS = 2e10  # train rows × test rows × length × window beyond which DTW is skipped (minutes in C)


def _rows(t: Any, values: pd.Series) -> list[np.ndarray]:
    """Each row's standardised real readings, float64 ``(C, length)``."""
    x = t.transform(values).numpy().astype(np.float64)
    lengths = (x[:, -1] > 0.5).sum(1)
    return [x[i, :-1, : max(int(n), 1)] for i, n in enumerate(lengths)]


def _resampled(rows: list[np.ndarray], length: int) -> np.ndarray:
    """(n, C × length): every row stretched to ``length`` readings."""
    grid = np.linspace(0.0, 1.0, length)
    out = []
    for r in rows:
        at = np.linspace(0.0, 1.0, r.shape[1])
        out.append(np.stack([np.interp(grid, at, c) for c in r]).ravel())
    return np.asarray(out)


def euclidean(train: list[np.ndarray], test: list[np.ndarray]) -> np.ndarray:
    length = max(r.shape[1] for r in train)
    a, b = torch.from_numpy(_resampled(test, length)), torch.from_numpy(_resampled(train, length))
    return torch.cdist(a, b).numpy()


def dtw(train: list[np.ndarray], test: list[np.ndarray]) -> np.ndarray:
    from dtaidistance import dtw as univariate, dtw_ndim

    window = max(1, math.ceil(DTW_WINDOW * max(r.shape[1] for r in train)))
    series = [np.ascontiguousarray(r[0] if r.shape[0] == 1 else r.T) for r in train + test]
    block = ((0, len(train)), (len(train), len(series)))
    if train[0].shape[0] == 1:
        full = univariate.distance_matrix_fast(series, window=window, block=block, compact=False)
    else:
        full = dtw_ndim.distance_matrix_fast(series, window=window, block=block)
    return np.asarray(full)[: len(train), len(train):].T


class NearestNeighbour:
    """1-NN with a scikit-learn face (``fit``, ``predict``, ``predict_proba``, ``classes_``) on a series column."""

    def __init__(self, t: Any, distance: Callable[[list[np.ndarray], list[np.ndarray]], np.ndarray]) -> None:
        self.t, self.distance = t, distance

    def fit(self, values: pd.Series, y: np.ndarray) -> NearestNeighbour:
        self.train, self.y = _rows(self.t, values), np.asarray(y)
        self.classes_ = np.unique(self.y)
        return self

    def _distances(self, values: pd.Series) -> np.ndarray:
        return self.distance(self.train, _rows(self.t, values))  # (test, train)

    def predict(self, values: pd.Series) -> np.ndarray:
        return self.y[self._distances(values).argmin(1)]

    def predict_proba(self, values: pd.Series) -> np.ndarray:
        d = self._distances(values)
        nearest = np.stack([d[:, self.y == c].min(1) for c in self.classes_], axis=1)  # (test, classes)
        scale = np.maximum(np.median(d, axis=1, keepdims=True), 1e-12)
        logits = -nearest / scale * 10.0  # sharp: a tenth of the median distance is a factor e
        p = np.exp(logits - logits.max(1, keepdims=True))
        return p / p.sum(1, keepdims=True)


def _distances(t: Any, train_rows: int, test_rows: int) -> dict[str, Callable]:
    found = {"1-nn euclidean": euclidean}
    length = int(t.state["max_length"])
    cells = train_rows * test_rows * length * max(1.0, DTW_WINDOW * length) * 2
    if importlib.util.find_spec("dtaidistance") is None:
        log.info("1-NN DTW left out of the comparison: pip install dtaidistance")
    elif cells > DTW_CELLS:
        log.info("1-NN DTW left out of the comparison: %.0e DTW cells would take too long", cells)
    else:
        found["1-nn dtw"] = dtw
    return found


def neighbour_rows(t: Any, output: Any, split: dict[str, pd.DataFrame], y: dict[str, np.ndarray]
                   ) -> list[dict[str, Any]]:
    """compare's rows for the 1-NN counterparts of ``output`` when the series ``t`` is the model's one input, scored
    as compare's other models are (threshold tuned on validation by the output's own ``calibrate``)."""
    rows = []
    for name, distance in _distances(t, len(split["train"]), len(split["test"])).items():
        started = time.perf_counter()
        model = NearestNeighbour(t, distance).fit(split["train"][t.name], y["train"])
        fitted = copy.deepcopy(output)
        if "validation" in split:
            fitted.calibrate(output.classical_raw(model, split["validation"][t.name]), split["validation"][output.name])
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        scores = output.classical_raw(model, split["test"][t.name])
        metrics = {"rows": len(split["test"]), **fitted.metrics(split["test"][output.name], scores)}
        rows.append({"model": name, "output": output.name, "train_seconds": train_seconds,
                     "predict_seconds": time.perf_counter() - started, "metrics": metrics})
    return rows
