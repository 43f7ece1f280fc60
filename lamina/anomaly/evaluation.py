"""How well scores find the anomalies a label column marks (the label is never trained on)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn import metrics as skm

from lamina.config import Config
from lamina.errors import LaminaError, where
from lamina.outputs.alerts import Costs, expected_cost

FALSE_ALARMS = 0.01  # recall_at_1pct_false_alarms: the threshold that flags 1 % of the normal rows


def anomaly_truth(values: pd.Series, positive: str | None, source: str | None, column: str) -> tuple[np.ndarray, str]:
    """1 for an anomaly, 0 for a normal row, -1 where the label is missing; and the anomaly's label value."""
    text = values.map(lambda v: None if pd.isna(v) else str(v))
    seen = text.dropna().value_counts()
    if positive is None:
        if len(seen) != 2:
            raise LaminaError(where(source, f"label column {column!r} has {len(seen)} values; set anomaly.positive to "
                                    "the one that marks an anomaly"))
        positive = str(seen.index[-1])  # the rarer value
    elif positive not in seen.index:
        raise LaminaError(where(source, f"label column {column!r} has no value {positive!r} (anomaly.positive); its "
                                f"values are {', '.join(map(repr, list(seen.index)[:5]))}"))
    truth = np.where(text.isna(), -1, (text == positive).astype(int))
    return truth.astype(np.int64), positive


def split_labels(config: Config, frames: dict[str, pd.DataFrame], sources: dict[str, str]
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


def ranking_metrics(scores: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """How well the scores rank the labelled anomalies (1) above the normal rows (0), at no threshold."""
    if not 0 < truth.sum() < len(truth):
        return {}
    return {"roc_auc": float(skm.roc_auc_score(truth, scores)), "pr_auc": float(skm.average_precision_score(truth, scores)),
            "recall_at_1pct_false_alarms": float(np.mean(scores[truth == 1] > np.quantile(scores[truth == 0],
                                                                                          1 - FALSE_ALARMS)))}


def score_metrics(scores: np.ndarray, threshold: float, truth: np.ndarray | None, costs: Costs | None = None
                  ) -> dict[str, Any]:
    flagged = scores > threshold
    result: dict[str, Any] = {"rows": int(len(scores)), "score_mean": float(scores.mean()) if len(scores) else math.nan,
                              "threshold": float(threshold), "flagged": float(flagged.mean()) if len(scores) else 0.0}
    if truth is None:
        return result
    keep = truth >= 0
    t, s, f = truth[keep], scores[keep], flagged[keep]
    result["anomalies"] = int(t.sum())
    if 0 < t.sum() < len(t):
        result.update({
            **ranking_metrics(s, t),
            "precision": float(skm.precision_score(t, f, zero_division=0)),
            "recall": float(skm.recall_score(t, f, zero_division=0)),
            "f1": float(skm.f1_score(t, f, zero_division=0)),
        })
    if costs is not None and len(t):
        result["expected_cost"] = expected_cost(t, f.astype(int), costs)
        result["expected_cost_no_alerts"] = float(costs.missed * t.sum() / len(t))
    return result


class ScoreLabel:
    """The label column seen as an output by ``lamina compare`` (its table, verdict and paired bootstrap): ``raw``
    is a detector's scores as one column, ``transform`` the 1 / 0 truth, judged by ROC-AUC as the binary output is."""

    primary_metric, higher_is_better = "roc_auc", True
    sequence = False

    def __init__(self, name: str, positive: str) -> None:
        self.name, self.positive = name, positive

    def transform(self, values: pd.Series) -> torch.Tensor:
        text = values.map(lambda v: None if pd.isna(v) else str(v))  # a resample may hold no anomaly: no check here
        return torch.from_numpy(np.where(text.isna(), -1, (text == self.positive).astype(int)).astype(np.int64))

    def metrics(self, values: pd.Series, raw: np.ndarray) -> dict[str, float]:
        truth = self.transform(values).numpy()
        keep = truth >= 0
        return ranking_metrics(raw[keep, 0], truth[keep])
