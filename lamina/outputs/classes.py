"""What the binary and category outputs share: class vocabularies, weights, focal loss and classification metrics."""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from sklearn import metrics as skm
from torch import nn
from torch.nn import functional as F

from lamina.errors import LaminaError, row_name
from lamina.inputs.base import Options
from lamina.inputs.binary import label


class ClassOptions(Options):
    loss: Literal["cross_entropy", "focal"] = "cross_entropy"
    focal_gamma: float = Field(2.0, ge=0)
    class_weights: Literal["none", "balanced"] | dict[str, float] = "none"
    loss_weight: float = Field(1.0, gt=0, description="weight of this output's loss when there are several outputs")


class ClassState(BaseModel):
    """The fitted state of an output with classes, as ``lamina.json`` must hold it."""

    model_config = ConfigDict(strict=True, extra="allow")
    classes: list[str] = Field(min_length=1)
    weights: list[float] | None = None


def labels_of(values: pd.Series) -> pd.Series:
    return values.map(label, na_action="ignore")


def check_classes(name: str, classes: list[str]) -> None:
    if len(classes) < 2:
        found = f"only the class {classes[0]!r}" if classes else "no values"
        raise LaminaError(f"target '{name}': the training split has {found}; a classifier needs at least two classes")


def class_weights(options: ClassOptions, classes: list[str], counts: dict[str, int]) -> list[float] | None:
    if options.class_weights == "none":
        return None
    if options.class_weights == "balanced":
        total = sum(counts.values())
        return [total / (len(classes) * max(counts.get(c, 0), 1)) for c in classes]
    unknown = set(options.class_weights) - set(classes)
    if unknown:
        raise LaminaError(f"class_weights names classes not in the data: {sorted(unknown)}; classes are {classes}")
    return [float(options.class_weights.get(c, 1.0)) for c in classes]


def class_index(name: str, values: pd.Series, classes: list[str]) -> torch.Tensor:
    lookup = {c: i for i, c in enumerate(classes)}
    index = labels_of(values).map(lookup)
    unknown = index.isna() & values.notna()
    if unknown.any():
        row = unknown.idxmax()
        raise LaminaError(
            f"target '{name}' row {row_name(row)}: class {values[row]!r} was not in the training data (classes: "
            f"{', '.join(classes[:10])}); remove those rows or retrain with them"
        )
    return torch.from_numpy(np.array(index.to_numpy(dtype=np.float64, na_value=-100), dtype=np.int64))


class FocalLoss(nn.Module):
    """Cross-entropy down-weighting easy examples (Lin et al. 2017), for rare classes."""

    def __init__(self, gamma: float, weight: torch.Tensor | None) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits, dim=-1)
        logp_t = logp.gather(1, target.unsqueeze(1)).squeeze(1)
        loss = -((1 - logp_t.exp()) ** self.gamma) * logp_t
        if self.weight is not None:
            loss = loss * self.weight[target]
        return loss.mean()


def classification_loss(options: ClassOptions, weights: list[float] | None) -> nn.Module:
    weight = torch.tensor(weights, dtype=torch.float32) if weights else None
    if options.loss == "focal":
        return FocalLoss(options.focal_gamma, weight)
    return nn.CrossEntropyLoss(weight=weight)


def classification_metrics(truth: np.ndarray, predicted: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Metrics of integer class indices ``truth``/``predicted`` and probabilities ``proba`` (n, classes)."""
    labels = list(range(len(classes)))
    with warnings.catch_warnings():
        # A class absent from a small split is normal here; sklearn's warning about it would only be noise.
        warnings.simplefilter("ignore", UserWarning)
        return _classification_metrics(truth, predicted, proba, classes, labels)


def _classification_metrics(truth: np.ndarray, predicted: np.ndarray, proba: np.ndarray, classes: list[str],
                            labels: list[int]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "accuracy": float(skm.accuracy_score(truth, predicted)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(truth, predicted)),
        "macro_f1": float(skm.f1_score(truth, predicted, average="macro", labels=labels, zero_division=0)),
        "log_loss": float(skm.log_loss(truth, np.clip(proba, 1e-7, 1), labels=labels)),
    }
    present = np.unique(truth)
    if len(classes) == 2 and len(present) == 2:
        result["roc_auc"] = float(skm.roc_auc_score(truth, proba[:, 1]))
        result["pr_auc"] = float(skm.average_precision_score(truth, proba[:, 1]))
    elif len(present) == len(classes) > 2:
        result["roc_auc"] = float(skm.roc_auc_score(truth, proba, multi_class="ovr", labels=labels))
        result["pr_auc"] = float(skm.average_precision_score(np.eye(len(classes))[truth], proba, average="macro"))
    result["confusion_matrix"] = {
        "labels": classes,
        "matrix": skm.confusion_matrix(truth, predicted, labels=labels).tolist(),
    }
    return result


def truth_index(values: pd.Series, classes: list[str]) -> np.ndarray:
    """Class indices of raw targets; classes never seen in training become -1 (counted as errors)."""
    lookup = {c: i for i, c in enumerate(classes)}
    return labels_of(values).map(lookup).to_numpy(dtype=np.float64, na_value=-1).astype(np.int64)
