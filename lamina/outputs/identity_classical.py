"""The identity output's classical counterparts for ``lamina compare``: the inputs' own classical features (an audio
input's MFCC statistics, an image's HOG) standardised on the training split and scored by cosine, and the same
projected by LDA fitted on the training people (Fisherfaces' recipe). Same protocol as the deep model: the threshold
set on the validation people, every metric on the test people."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from lamina.inputs.binary import label


def _matrix(featurizers: list[Any], values: dict[str, pd.Series]) -> np.ndarray:
    blocks = []
    for f in featurizers:
        for block in f.features(values[f.column.name]).linear:
            blocks.append(block.toarray() if hasattr(block, "toarray") else np.asarray(block, dtype=np.float64))
    return np.nan_to_num(np.hstack(blocks), nan=0.0, posinf=0.0, neginf=0.0)


def _features(inputs: list[Any], split: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    featurizers = [t.classical() for t in inputs]
    for f in featurizers:
        f.fit(split["train"][f.column.name])
    return {name: _matrix(featurizers, {c: frame[c] for c in frame.columns}) for name, frame in split.items()}


def classical_rows(output: Any, inputs: list[Any], split: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """Rows of compare's table: features + cosine, and features + LDA + cosine."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    started = time.perf_counter()
    x = _features(inputs, split)
    mean, std = x["train"].mean(0), x["train"].std(0) + 1e-8
    x = {name: (v - mean) / std for name, v in x.items()}
    feature_seconds = time.perf_counter() - started
    people = split["train"][output.name].map(label).to_numpy().astype(str)
    names = "+".join(t.name for t in inputs)
    rows = []
    for model_name, project in ((f"{names} features + cosine", None), (f"{names} features + LDA + cosine", "lda")):
        started = time.perf_counter()
        transform = (lambda v: v)
        if project == "lda":
            lda = LinearDiscriminantAnalysis(n_components=min(len(set(people)) - 1, x["train"].shape[1]))
            lda.fit(x["train"], people)
            transform = lda.transform
        threshold = None
        if len(split.get("validation", ())):
            threshold = output.threshold_for(transform(x["validation"]), split["validation"][output.name])
        train_seconds = time.perf_counter() - started + feature_seconds
        started = time.perf_counter()
        emb = transform(x["test"])
        predict_seconds = time.perf_counter() - started
        metrics = {"rows": len(split["test"]),
                   **output.embedding_metrics(split["test"][output.name], emb, threshold)}
        rows.append({"model": model_name, "output": output.name, "train_seconds": train_seconds,
                     "predict_seconds": predict_seconds, "metrics": metrics})
    return rows
