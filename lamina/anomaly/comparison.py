"""What ``lamina compare`` asks an anomaly model for: the network and the classical detectors (Isolation Forest, LOF,
kNN distance) on the training run's own split and rows (the normal ones only with ``train_on: normal``), each with
its threshold from the validation scores, scored on the labelled test rows with the same metrics; and each one's
test scores, for the paired bootstrap of the difference."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from lamina.anomaly.baselines import fitted_detectors
from lamina.anomaly.evaluation import ScoreLabel, score_metrics, split_labels
from lamina.anomaly.networks import scores
from lamina.errors import LaminaError

DEEP = "lamina (deep)"  # the name compare's verdict and bootstrap know the network's row by


def comparison(model: Any, frames: dict[str, pd.DataFrame], sources: dict[str, str], train_seconds: float
               ) -> dict[str, Any]:
    """``outputs`` (the label as compare's output), ``rows`` (model, output, seconds, metrics), ``kept`` ((model,
    output) → the scored test rows' index and scores) and ``scored`` (those test rows)."""
    config, anomaly = model.config, model.config.anomaly
    if not anomaly.label:
        raise LaminaError("lamina compare of an anomaly model scores the detectors against a label column: set "
                          "anomaly.label (lamina init DATA --task anomaly --target LABEL)")
    if not len(frames.get("test", [])):
        raise LaminaError("lamina compare of an anomaly model needs test rows: give data.split a test fraction")
    truth, positive = split_labels(config, frames, sources)
    x = {name: model.features(frame, sources.get(name)) for name, frame in frames.items() if len(frame)}
    train, valid = x["train"], x.get("validation", x["train"][:0])
    if anomaly.train_on == "normal":  # as the network was trained: its threshold and the detectors' see normal rows
        train = train[truth["train"] == 0]
        valid = valid[truth["validation"] == 0] if len(valid) else valid
    labelled = truth["test"] >= 0
    scored = frames["test"][labelled]
    label = ScoreLabel(anomaly.label, str(positive))
    rows: list[dict[str, Any]] = []
    kept: dict[tuple[str, str], tuple[pd.Index, np.ndarray]] = {}

    def add(name: str, test_scores: np.ndarray, cut: float, fit_seconds: float, predict_seconds: float) -> None:
        rows.append({"model": name, "output": label.name, "train_seconds": fit_seconds,
                     "predict_seconds": predict_seconds,
                     "metrics": score_metrics(test_scores, cut, truth["test"], anomaly.costs)})
        kept[(name, label.name)] = (scored.index, test_scores[labelled][:, None])

    started = time.perf_counter()
    deep = scores(model.network, torch.from_numpy(x["test"])).numpy().astype(np.float64)
    add(DEEP, deep, model.threshold, train_seconds, time.perf_counter() - started)
    for name, score, cut, seconds in fitted_detectors(anomaly, config.trainer.seed, train, valid):
        started = time.perf_counter()
        found = np.asarray(score(x["test"]), dtype=np.float64)
        add(name, found, cut, seconds, time.perf_counter() - started)
    return {"outputs": [label], "rows": rows, "kept": kept, "scored": scored}
