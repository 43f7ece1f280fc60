"""Global views of a labelled set: permutation importance (the drop of the output's primary metric when a column is
shuffled) and the deletion check of faithfulness (top-attributed features replaced by the baseline)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from lamina.explain.rows import _prepare
from lamina.explain.space import STEPS, Attribution, Space, attribute
from lamina.predictor import Predictor


def _metric(space: Space, values: pd.Series, raw: np.ndarray, name: str) -> float:
    return float(space.output.metrics(values, raw).get(name, float("nan")))


def _split_columns(space: Space, tensors: list[torch.Tensor]) -> list[tuple[int, slice | None]]:
    """For each column: which tensor, and which slice of it (None: the whole tensor)."""
    found = []
    for i, p in enumerate(space.parts):
        if p.mode == "dense":
            found += [(i, s) for s in p.slices]
        else:
            found.append((i, None))
    return found


def permutation_importance(predictor: Predictor, frame: pd.DataFrame, output: str | None = None,
                           repeats: int = 3, seed: int = 0) -> dict[str, Any]:
    """How much the output's primary metric drops when one column's values are shuffled across rows."""
    frame, inputs = _prepare(predictor, frame, labelled=True)
    space = Space(predictor, output)
    tensors = space.tensors(inputs)
    values = frame[space.output.name]
    metric = space.output.primary_metric
    sign = 1.0 if space.output.higher_is_better else -1.0
    base = _metric(space, values, space.run_raw(tensors), metric)
    rng = np.random.default_rng(seed)
    drops: dict[str, list[float]] = {}
    for column, (i, s) in zip(space.columns, _split_columns(space, tensors)):
        for _ in range(repeats):
            order = torch.as_tensor(rng.permutation(len(frame)))
            shuffled = list(tensors)
            x = tensors[i].clone()
            if s is None:
                x = x[order]
            else:
                x[:, s] = x[order][:, s]
            shuffled[i] = x
            drops.setdefault(column, []).append(sign * (base - _metric(space, values, space.run_raw(shuffled), metric)))
    return {"metric": metric, "baseline_value": base, "rows": len(frame),
            "importance": {c: float(np.mean(v)) for c, v in drops.items()},
            "std": {c: float(np.std(v)) for c, v in drops.items()}}


def _accuracy(space: Space, values: pd.Series, raw: np.ndarray) -> float:
    return _metric(space, values, raw, space.output.readout_metric)


def faithfulness(predictor: Predictor, frame: pd.DataFrame, fraction: float = 0.1, output: str | None = None,
                 seed: int = 0, steps: int = STEPS) -> dict[str, Any]:
    """The deletion check: replace with the baseline the top-attributed ``fraction`` of each row's table columns
    (or of each image's pixels) and, separately, a random ``fraction``; faithful attributions hurt accuracy more
    when their top features go. Supporting evidence is attribution toward the predicted class."""
    frame, inputs = _prepare(predictor, frame, labelled=True)
    space = Space(predictor, output)
    tensors = space.tensors(inputs)
    result = attribute(space, tensors, steps)
    values = frame[space.output.name]
    rng = np.random.default_rng(seed)
    n = len(frame)
    base = space.baselines(tensors)
    if result.pixels:  # images: delete pixels of the (first) image column
        key = next(iter(result.pixels))
        i = next(j for j, p in enumerate(space.parts) if p.key == key)
        support = result.pixels[key] * _direction(space, result)[:, None, None]
        flat = support.reshape(n, -1)
        k = max(1, int(round(fraction * flat.shape[1])))
        top = np.argsort(-flat, axis=1)[:, :k]
        random = np.stack([rng.choice(flat.shape[1], k, replace=False) for _ in range(n)])
        unit, what = "pixels", f"{k} of {flat.shape[1]} pixels of '{key}'"

        def delete(chosen: np.ndarray) -> list[torch.Tensor]:
            mask = np.zeros_like(flat, dtype=bool)
            np.put_along_axis(mask, chosen, True, axis=1)
            m = torch.as_tensor(mask.reshape(support.shape))[:, None].expand_as(tensors[i])
            out = list(tensors)
            out[i] = torch.where(m, base[i], tensors[i])
            return out
    else:  # tables: delete columns
        support = result.values * _direction(space, result)[:, None]
        k = max(1, int(round(fraction * support.shape[1])))
        top = np.argsort(-support, axis=1)[:, :k]
        random = np.stack([rng.choice(support.shape[1], k, replace=False) for _ in range(n)])
        where = _split_columns(space, tensors)
        unit, what = "columns", f"{k} of {support.shape[1]} columns"

        def delete(chosen: np.ndarray) -> list[torch.Tensor]:
            out = [t.clone() for t in tensors]
            for c, (i, s) in enumerate(where):
                rows = torch.as_tensor(np.flatnonzero((chosen == c).any(1)))
                if len(rows):
                    if s is None:
                        out[i][rows] = base[i][rows]
                    else:
                        out[i][rows, s] = base[i][rows][:, s]
            return out

    original = _accuracy(space, values, result.raw)
    top_acc = _accuracy(space, values, space.run_raw(delete(top)))
    random_acc = _accuracy(space, values, space.run_raw(delete(random)))
    return {"rows": n, "fraction": fraction, "unit": unit, "deleted": what,
            "metric": space.output.readout_metric,
            "original": original, "top_deleted": top_acc, "random_deleted": random_acc,
            "faithful": bool(top_acc < random_acc)}


def _direction(space: Space, result: Attribution) -> np.ndarray:
    """+1 where a higher explained score supports the prediction, −1 where it opposes it (the output type's say)."""
    return space.output.explained_direction(result.raw)
