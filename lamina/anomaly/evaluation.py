"""How well scores find the anomalies a label column marks (the label is never trained on)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from lamina.errors import LaminaError, where

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


def score_metrics(scores: np.ndarray, threshold: float, truth: np.ndarray | None) -> dict[str, Any]:
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
            "roc_auc": float(skm.roc_auc_score(t, s)), "pr_auc": float(skm.average_precision_score(t, s)),
            "precision": float(skm.precision_score(t, f, zero_division=0)),
            "recall": float(skm.recall_score(t, f, zero_division=0)),
            "f1": float(skm.f1_score(t, f, zero_division=0)),
            "recall_at_1pct_false_alarms": float(np.mean(s[t == 1] > np.quantile(s[t == 0], 1 - FALSE_ALARMS))),
        })
    return result
