"""An anomaly run: the inputs' types fitted on the training rows, their features scaled, the detector trained by
the one loop (``lamina.training.loop``), its threshold set on validation scores, and every split scored -- with the
classical detectors beside it on the test rows, and against the label column when there is one."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lamina.anomaly.baselines import detectors
from lamina.anomaly.evaluation import anomaly_truth, score_metrics
from lamina.anomaly.features import fit_scaling, raw_features, scaled
from lamina.anomaly.model import AnomalyModel, columns
from lamina.anomaly.networks import scores
from lamina.anomaly.task import AnomalyTask
from lamina.anomaly.thresholds import threshold
from lamina.config import Config
from lamina.errors import LaminaError, where
from lamina.preprocessor import Preprocessor
from lamina.training import loop
from lamina.training.session import start
from lamina.training.splits import fingerprints

log = logging.getLogger("lamina")


def fit_anomaly(config: Config, frames: dict[str, pd.DataFrame], sources: dict[str, str],
                workdir: Path | None = None, resume: bool = False, verbose: bool = True) -> AnomalyModel:
    anomaly = config.anomaly
    assert anomaly is not None
    source = sources.get("train")
    truth, positive = _labels(config, frames, sources)
    if anomaly.train_on == "normal":
        keep = truth["train"] == 0
        log.info("training on the %d normal rows of %d (train_on: normal)", int(keep.sum()), len(keep))
        frames = {**frames, "train": frames["train"][keep]}
        truth = {**truth, "train": truth["train"][keep]}
    session = start(config, workdir, resume, lambda: fingerprints(config, frames))
    saved = session.saved
    prep = Preprocessor(columns(config), saved["preprocessor"] if saved else None)
    if saved is None:
        prep.fit(frames["train"], source)
    raw = {name: raw_features(prep.inputs, frame, sources.get(name)) for name, frame in frames.items() if len(frame)}
    scaling = saved["scaling"] if saved else fit_scaling(raw["train"])
    x = {name: scaled(values, scaling) for name, values in raw.items()}
    valid = x.get("validation", x["train"][:0])
    if anomaly.train_on == "normal" and len(valid):  # early stopping and the threshold see normal rows only, too
        valid = valid[truth["validation"] == 0]
    task = AnomalyTask(session, x["train"], valid, {"preprocessor": prep.state(), "scaling": scaling})
    started = time.perf_counter()
    state = loop.train(task, session, verbose)
    seconds = time.perf_counter() - started
    network = task.network.cpu()
    split_scores = {name: scores(network, torch.from_numpy(values)).numpy().astype(np.float64)
                    for name, values in x.items()}
    calibration = scores(network, torch.from_numpy(valid)).numpy() if len(valid) else split_scores["train"]
    cut = threshold(calibration, anomaly)
    name = anomaly.method
    metrics: dict[str, dict[str, Any]] = {
        split: {name: score_metrics(s, cut, truth.get(split))} for split, s in split_scores.items()}
    if "test" in x:
        metrics["test"][name]["train_seconds"] = seconds
        metrics["test"].update(_baselines(config, x, valid, truth))
    info = {"metrics": {k: v for k, v in metrics.items() if v}, "history": state.history,
            "best_epoch": state.best_epoch, "epochs_run": len(state.history), "train_seconds": seconds,
            "positive": positive}
    return AnomalyModel(config, prep, scaling, network, cut, info)


def _labels(config: Config, frames: dict[str, pd.DataFrame], sources: dict[str, str]
            ) -> tuple[dict[str, np.ndarray], str | None]:
    """Each split's anomaly labels (1, 0, or -1 where missing) when the config names a label column."""
    anomaly = config.anomaly
    assert anomaly is not None
    if not anomaly.label:
        return {}, None
    if anomaly.label in {s.name for s in config.inputs}:
        raise LaminaError(f"anomaly.label {anomaly.label!r} is also an input; the label is for evaluation only")
    positive, truth = anomaly.positive, {}
    for name, frame in frames.items():
        if anomaly.label not in frame.columns:
            raise LaminaError(where(sources.get(name), f"no label column {anomaly.label!r} (anomaly.label)"))
        truth[name], positive = anomaly_truth(frame[anomaly.label], positive, sources.get(name), anomaly.label)
    return truth, positive


def _baselines(config: Config, x: dict[str, np.ndarray], valid: np.ndarray, truth: dict[str, np.ndarray]
               ) -> dict[str, dict[str, Any]]:
    """The classical detectors on the test rows, each with its own threshold from the scores of ``valid`` (the
    validation rows the network's threshold came from)."""
    anomaly = config.anomaly
    assert anomaly is not None
    found: dict[str, dict[str, Any]] = {}
    for name, fit in detectors(anomaly.neighbours, config.trainer.seed).items():
        if name not in anomaly.baselines:
            continue
        started = time.perf_counter()
        score = fit(x["train"])
        seconds = time.perf_counter() - started
        calibration = score(valid) if len(valid) else score(x["train"])
        found[name] = {**score_metrics(score(x["test"]), threshold(calibration, anomaly), truth.get("test")),
                       "train_seconds": seconds}
    return found
