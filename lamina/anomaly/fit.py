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

from lamina.anomaly.baselines import fitted_detectors
from lamina.anomaly.evaluation import score_metrics, split_labels
from lamina.anomaly.features import fit_scaling, raw_features, scaled
from lamina.anomaly.model import AnomalyModel, columns
from lamina.anomaly.networks import scores
from lamina.anomaly.task import AnomalyTask
from lamina.anomaly.thresholds import threshold
from lamina.config import Config
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
    truth, positive = split_labels(config, frames, sources)
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
        split: {name: score_metrics(s, cut, truth.get(split), anomaly.costs)} for split, s in split_scores.items()}
    if "test" in x:
        metrics["test"][name]["train_seconds"] = seconds
        metrics["test"].update(_baselines(config, x, valid, truth))
    info = {"metrics": {k: v for k, v in metrics.items() if v}, "history": state.history,
            "best_epoch": state.best_epoch, "epochs_run": len(state.history), "train_seconds": seconds,
            "positive": positive}
    return AnomalyModel(config, prep, scaling, network, cut, info)


def _baselines(config: Config, x: dict[str, np.ndarray], valid: np.ndarray, truth: dict[str, np.ndarray]
               ) -> dict[str, dict[str, Any]]:
    """The classical detectors on the test rows, each with its own threshold from the scores of ``valid``."""
    anomaly = config.anomaly
    assert anomaly is not None
    return {name: {**score_metrics(score(x["test"]), cut, truth.get("test"), anomaly.costs), "train_seconds": seconds}
            for name, score, cut, seconds in fitted_detectors(anomaly, config.trainer.seed, x["train"], valid)}
