"""Binary targets: one logit, a sigmoid, and a decision threshold chosen on the validation split.

With 1-3 % positives (fraud, defaults) the 0.5 threshold almost never fires; choosing it on validation data for the
metric the user cares about (F1, or a target precision or recall) is what makes the classifier usable.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator
from scipy.special import expit
from sklearn import metrics as skm
from torch import nn
from torch.nn import functional as F

from lamina.errors import LaminaError
from lamina.inputs.binary import positive_first
from lamina.outputs.alerts import Costs, alert_metrics, bootstrap_intervals, cheapest_score
from lamina.outputs.base import OutputType
from lamina.outputs.classes import (
    ClassState,
    ClassOptions, check_classes, class_index, class_weights, classification_metrics, labels_of, truth_index,
)

log = logging.getLogger("lamina")
# Positives and negatives each, below which the decision threshold stays at 0.5: with fewer, one row more or less
# moves recall or precision by over 10 points, and the tuned threshold is noise.
MIN_THRESHOLD_ROWS = 10
RARE_SHARE = 0.05  # positives below this share of the training rows: classical models get their imbalance settings


class BinaryOptions(ClassOptions):
    positive: str | None = Field(None, description="the positive class; default: yes/true/1, else the rarer class")
    threshold: float | None = Field(None, gt=0, lt=1, description="fixed decision threshold; default: tuned")
    threshold_metric: Literal["f1", "precision", "recall", "cost"] = Field(
        "f1", description="what the tuned threshold optimises on validation; cost (the default with costs): the "
                          "expected cost")
    threshold_target: float = Field(0.9, gt=0, le=1, description="precision or recall to reach, for those metrics")
    costs: Costs | None = Field(None, description="a cost matrix, e.g. {missed: 100, false_alarm: 1}: reports the "
                                "expected cost per row and tunes the threshold to minimise it")
    top_k: int = Field(100, ge=1, description="precision_at_k: the share of positives among the k top-scored rows")
    alert_budget: float = Field(0.01, gt=0, le=1, description="recall_at_budget: the share of positives among "
                                "this fraction of top-scored rows (the alerts a team can review)")
    bootstrap: int = Field(200, ge=0, description="resamples of the test rows for the metrics' 95 % intervals "
                           "(<metric>_low, <metric>_high); 0: none")

    @model_validator(mode="after")
    def _cost_threshold(self) -> BinaryOptions:
        if self.threshold_metric == "cost" and self.costs is None:
            raise ValueError("threshold_metric 'cost' needs costs: {missed: ..., false_alarm: ...}")
        if self.costs is not None and "threshold_metric" not in self.model_fields_set:
            self.threshold_metric = "cost"
        return self


class BinaryLoss(nn.Module):
    def __init__(self, focal_gamma: float | None, weights: list[float] | None) -> None:
        super().__init__()
        self.focal_gamma = focal_gamma
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32) if weights else None)

    def forward(self, logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logit = logit.squeeze(1)
        y = target.to(logit.dtype)
        if self.focal_gamma is None and self.weights is None:
            return F.binary_cross_entropy_with_logits(logit, y)  # the common case, in one fused op
        loss = F.binary_cross_entropy_with_logits(logit, y, reduction="none")
        if self.focal_gamma is not None:
            p_t = torch.exp(-loss)
            loss = (1 - p_t) ** self.focal_gamma * loss
        if self.weights is not None:
            loss = loss * self.weights[target]
        return loss.mean()


class BinaryState(ClassState):
    threshold: float = Field(ge=0, le=1)


class BinaryOutput(OutputType):
    kind = "binary"
    Options = BinaryOptions
    state_schema = BinaryState
    primary_metric = "roc_auc"
    higher_is_better = True
    metric_names = ("accuracy", "balanced_accuracy", "macro_f1", "f1", "precision", "recall", "log_loss", "roc_auc",
                    "pr_auc", "precision_at_k", "recall_at_budget")
    # expected_cost is reported (with costs) but not one to stop early on: its threshold is tuned after training
    lower_is_better = frozenset({"log_loss", "expected_cost"})
    task = "classification"

    def fit(self, values: pd.Series) -> None:
        counts = labels_of(values.dropna()).value_counts()
        seen = sorted(str(c) for c in counts.index)
        check_classes(self.name, seen)
        if len(seen) > 2:
            raise LaminaError(
                f"target '{self.name}': type binary but {len(seen)} classes ({', '.join(seen[:5])}); "
                "declare it as a category"
            )
        if self.options.positive is not None:
            if self.options.positive not in seen:
                raise LaminaError(f"target '{self.name}': positive class {self.options.positive!r} not in {seen}")
            classes = [c for c in seen if c != self.options.positive] + [self.options.positive]
        else:
            ordered = positive_first(seen)
            if ordered == seen and not {c.lower() for c in seen} & {"0", "1", "true", "false", "yes", "no"}:
                ordered = sorted(seen, key=lambda c: -counts[c])  # the rarer class is the one worth finding
            classes = ordered
        self.state = {
            "classes": classes,
            "weights": class_weights(self.options, classes, {str(k): int(v) for k, v in counts.items()}),
            "threshold": self.options.threshold if self.options.threshold is not None else 0.5,
        }

    def transform(self, values: pd.Series) -> torch.Tensor:
        return class_index(self.name, values, self.state["classes"])

    def known(self, values: pd.Series) -> np.ndarray:
        return truth_index(values, self.state["classes"]) >= 0

    def head(self, in_dim: int) -> nn.Module:
        return nn.Linear(in_dim, 1)

    def loss(self) -> nn.Module:
        gamma = self.options.focal_gamma if self.options.loss == "focal" else None
        return BinaryLoss(gamma, self.state["weights"])

    def average(self, raws: torch.Tensor) -> torch.Tensor:
        # the logit of the members' mean probability: log p − log(1 − p), each a log-mean-exp of log-sigmoids
        k = math.log(raws.shape[0])
        log_p = torch.logsumexp(F.logsigmoid(raws), dim=0) - k
        log_q = torch.logsumexp(F.logsigmoid(-raws), dim=0) - k
        return log_p - log_q

    def calibrate(self, raw: np.ndarray, values: pd.Series) -> None:
        if self.options.threshold is not None:
            return
        truth = truth_index(values, self.state["classes"])
        keep = truth >= 0
        truth, proba = truth[keep], expit(raw[keep, 0])
        positives, negatives = int((truth == 1).sum()), int((truth == 0).sum())
        if min(positives, negatives) < MIN_THRESHOLD_ROWS:
            # A threshold chosen on a handful of rows is noise (a 50-row set leaves ~7 validation rows): keep 0.5.
            self.state["threshold"] = 0.5
            log.warning("target '%s': decision threshold kept at 0.5: tuning it needs at least %d positive and %d "
                        "negative rows, and there are %d and %d", self.name, MIN_THRESHOLD_ROWS, MIN_THRESHOLD_ROWS,
                        positives, negatives)
            return
        if self.options.threshold_metric == "cost":
            self.state["threshold"] = self._cheapest(truth, proba)
            return
        precision, recall, thresholds = skm.precision_recall_curve(truth, proba)
        precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
        metric, target = self.options.threshold_metric, self.options.threshold_target
        if metric == "f1":
            f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
            best = int(np.argmax(f1))
        elif metric == "precision":
            ok = np.flatnonzero(precision >= target)
            best = int(ok[0]) if ok.size else int(np.argmax(precision))  # lowest threshold reaching it: most recall
        else:
            ok = np.flatnonzero(recall >= target)
            best = int(ok[-1]) if ok.size else 0  # highest threshold reaching it: most precision
        self.state["threshold"] = _between(proba, float(thresholds[best]))

    def _cheapest(self, truth: np.ndarray, proba: np.ndarray) -> float:
        """The threshold with the least expected cost on these rows, halfway to the next score (``_between``)."""
        chosen = cheapest_score(truth, proba, self.options.costs)
        if chosen is None:  # flagging nothing is cheapest: a threshold above every score
            return float(expit(np.log(proba.max()) - np.log1p(-min(proba.max(), 1 - 1e-12)) + 1.0))
        return _between(proba, chosen)

    def _predict(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = expit(raw[:, 0].astype(np.float64))
        return p, (p >= self.state["threshold"]).astype(np.int64)

    def decode(self, raw: np.ndarray) -> pd.DataFrame:
        p, predicted = self._predict(raw)
        negative, positive = self.state["classes"]
        return pd.DataFrame({
            self.name: np.asarray(self.state["classes"], dtype=object)[predicted],
            f"{self.name}_proba_{negative}": 1 - p,
            f"{self.name}_proba_{positive}": p,
        })

    def metrics(self, values: pd.Series, raw: np.ndarray) -> dict[str, Any]:
        p, predicted = self._predict(raw)
        truth = truth_index(values, self.state["classes"])
        seen = truth >= 0
        truth, p, predicted = truth[seen], p[seen], predicted[seen]
        result = classification_metrics(truth, predicted, np.stack([1 - p, p], axis=1), self.state["classes"])
        result.update({
            "f1": float(skm.f1_score(truth, predicted, zero_division=0)),
            "precision": float(skm.precision_score(truth, predicted, zero_division=0)),
            "recall": float(skm.recall_score(truth, predicted, zero_division=0)),
            "threshold": self.state["threshold"],
        })
        options = self.options
        result.update(alert_metrics(truth, p, predicted, options.top_k, options.alert_budget, options.costs))
        return result

    def metric_intervals(self, values: pd.Series, raw: np.ndarray) -> dict[str, float]:
        p, predicted = self._predict(raw)
        truth = truth_index(values, self.state["classes"])
        seen = truth >= 0
        options = self.options
        return bootstrap_intervals(truth[seen], p[seen], predicted[seen], options.top_k, options.alert_budget,
                                   options.costs, options.bootstrap)

    # --- faces: a classical model's logit, explain P(positive), the report's curves -------------------------------

    def classical_rare(self, y: np.ndarray) -> bool:
        return bool(len(y)) and float(np.mean(y == 1)) < RARE_SHARE

    def raw_from_proba(self, proba: np.ndarray) -> np.ndarray:
        p = proba[:, 1] / proba.sum(1)
        return np.log(p / (1 - p))[:, None]

    def explained_score(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(raw[:, 0])

    def explained_score_name(self) -> str:
        return f"P({self.name} = {self.state['classes'][1]})"

    def explained_direction(self, raw: np.ndarray) -> np.ndarray:
        predicted = self.decode(raw).iloc[:, 0].to_numpy()
        return np.where(predicted == self.state["classes"][1], 1.0, -1.0)

    def report_section(self, inputs: list[Any], test: pd.DataFrame, raw: np.ndarray) -> str | None:
        from lamina.outputs.report_plots import binary_section

        return binary_section(self, test, raw)


def _between(proba: np.ndarray, chosen: float) -> float:
    """The threshold halfway, in logits, from the validation score ``chosen`` to the next lower one: the same rows
    fall on each side, but none sits on the boundary, where a change in the last float bit (another CPU, another
    process count) would flip its decision.

    >>> round(_between(np.array([0.2, 0.5, 0.8]), 0.8), 3)
    0.667
    """
    below = proba[proba < chosen]
    logit = lambda p: float(np.log(p) - np.log1p(-p))  # noqa: E731
    clip = lambda p: min(max(p, 1e-12), 1 - 1e-12)  # noqa: E731
    high = logit(clip(chosen))
    low = logit(clip(float(below.max()))) if below.size else high - 1.0
    return float(expit((high + low) / 2))

