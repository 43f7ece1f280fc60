"""The classical counterparts on exactly the deep model's split: each model of the inputs' family trained on the
training rows (LightGBM stops early on validation), the decision threshold tuned on validation the way the deep
model's is (each output type's own ``calibrate``), scored on test with the output type's own ``metrics``."""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import pandas as pd

from lamina.compare.features import family, features, featurizers
from lamina.errors import LaminaError
from lamina.predictor import Predictor


def clean(prep: Any, frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows ``lamina.training`` scores: with a target, with usable inputs, of classes seen in training."""
    frame = prep.drop_missing_targets(frame, name)
    frame = prep.drop_bad_inputs(frame, name)
    return prep.drop_unseen_classes(frame, name) if name != "train" else frame


def require_modules(modules: tuple[str, ...]) -> None:
    import importlib.util

    for name in modules:
        if importlib.util.find_spec(name) is None:
            raise LaminaError(f"the classical counterparts need {name}: pip install 'lamina[classical]'")


def counterparts(predictor: Predictor, frames: dict[str, pd.DataFrame], seed: int = 42,
                 keep_raw: dict | None = None) -> list[dict[str, Any]]:
    """Train the classical models on ``frames['train']``, tune the decision threshold on validation, score on test:
    one row per (model, output) with metrics and times. An output may bring its own counterparts (text).
    ``keep_raw`` receives each (model, output)'s test rows' index and raw outputs (for ``lamina.compare.noise``)."""
    prep = predictor.preprocessor
    split = {name: clean(prep, frame, name) for name, frame in frames.items() if len(frame) or name == "test"}
    split = {"train": split.pop("train"), **split}
    rows = []
    for output in prep.outputs:
        own = output.classical_counterparts(prep.inputs, split)
        if own is not None:
            rows += own
        else:
            rows += _output_counterparts(prep, output, split, seed, keep_raw)
    return rows


def _output_counterparts(prep: Any, output: Any, split: dict[str, pd.DataFrame], seed: int,
                         keep_raw: dict | None = None) -> list[dict[str, Any]]:
    if output.task is None:
        raise LaminaError(f"output '{output.name}' (type {output.kind}): no classical counterpart for this output type")
    y = {name: output.transform(frame[output.name]).numpy() for name, frame in split.items()}
    started = time.perf_counter()
    found = featurizers(prep.inputs, split["train"])
    models = family(found)
    require_modules(models.requires)
    x = {name: features(found, frame) for name, frame in split.items() if name != "test"}
    feature_seconds = time.perf_counter() - started
    classes = output.task == "classification"
    folds = int(max(2, min(3, np.bincount(y["train"]).min()))) if classes else 3
    rare = output.classical_rare(y["train"])
    rows = []
    for model_name, spec in models.models(classes, seed, folds).items():
        def use(f: tuple[pd.DataFrame, Any]) -> Any:
            return f[0] if spec.tree else f[1]

        started = time.perf_counter()
        model = spec.make()
        if rare and spec.rare is not None:
            spec.rare(model)
        validation = (use(x["validation"]), y["validation"]) if "validation" in x else None
        spec.fit(model, use(x["train"]), y["train"], validation)
        fitted = copy.deepcopy(output)
        if validation is not None:
            fitted.calibrate(output.classical_raw(model, validation[0]), split["validation"][output.name])
        train_seconds = time.perf_counter() - started + feature_seconds
        started = time.perf_counter()
        raw = output.classical_raw(model, use(features(found, split["test"])))
        predict_seconds = time.perf_counter() - started
        if keep_raw is not None:
            keep_raw[(model_name, output.name)] = (split["test"].index, raw)
        values = split["test"][output.name]
        metrics = {"rows": len(split["test"]), **fitted.metrics(values, raw), **fitted.metric_intervals(values, raw)}
        rows.append({"model": model_name, "output": output.name, "train_seconds": train_seconds,
                     "predict_seconds": predict_seconds, "metrics": metrics})
    if len(prep.inputs) == 1:
        rows += prep.inputs[0].sole_input_counterparts(output, split, y)
    return rows


def deep_row(predictor: Predictor, frames: dict[str, pd.DataFrame], train_seconds: float,
             keep_raw: dict | None = None) -> list[dict[str, Any]]:
    prep = predictor.preprocessor
    test = clean(prep, frames["test"], "test")
    started = time.perf_counter()
    raw = predictor.predict_raw(test)
    seconds = time.perf_counter() - started
    if keep_raw is not None:
        keep_raw.update({("lamina (deep)", t.name): (test.index, raw[t.name]) for t in prep.outputs})
    return [{"model": "lamina (deep)", "output": t.name, "train_seconds": train_seconds, "predict_seconds": seconds,
             "metrics": {"rows": len(test), **t.metrics(test[t.name], raw[t.name]),
                         **t.metric_intervals(test[t.name], raw[t.name])}} for t in prep.outputs]
