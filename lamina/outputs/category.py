"""Category targets: softmax over the classes seen in training."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import softmax
from torch import nn

from lamina.outputs.base import OutputType
from lamina.outputs.classes import (
    ClassState,
    ClassOptions, check_classes, class_index, class_weights, classification_loss, classification_metrics, labels_of,
    truth_index,
)


class CategoryOutput(OutputType):
    kind = "category"
    Options = ClassOptions
    state_schema = ClassState
    primary_metric = "accuracy"
    higher_is_better = True
    metric_names = ("accuracy", "balanced_accuracy", "macro_f1", "log_loss", "roc_auc", "pr_auc")
    lower_is_better = frozenset({"log_loss"})
    task = "classification"

    def fit(self, values: pd.Series) -> None:
        counts = labels_of(values.dropna()).value_counts()
        classes = sorted(counts.index, key=_natural)
        check_classes(self.name, classes)
        self.state = {
            "classes": classes,
            "weights": class_weights(self.options, classes, {str(k): int(v) for k, v in counts.items()}),
        }

    def transform(self, values: pd.Series) -> torch.Tensor:
        return class_index(self.name, values, self.state["classes"])

    def known(self, values: pd.Series) -> np.ndarray:
        return truth_index(values, self.state["classes"]) >= 0

    def head(self, in_dim: int) -> nn.Module:
        return nn.Linear(in_dim, len(self.state["classes"]))

    def loss(self) -> nn.Module:
        return classification_loss(self.options, self.state["weights"])

    def average(self, raws: torch.Tensor) -> torch.Tensor:
        # log of the members' mean probabilities, in log space so no probability underflows
        return torch.logsumexp(torch.log_softmax(raws, dim=-1), dim=0) - math.log(raws.shape[0])

    def decode(self, raw: np.ndarray) -> pd.DataFrame:
        proba = softmax(raw, axis=1)
        classes = self.state["classes"]
        out = {self.name: np.asarray(classes, dtype=object)[proba.argmax(1)]}
        out.update({f"{self.name}_proba_{c}": proba[:, i] for i, c in enumerate(classes)})
        return pd.DataFrame(out)

    def metrics(self, values: pd.Series, raw: np.ndarray) -> dict[str, Any]:
        proba = softmax(raw, axis=1)
        truth = truth_index(values, self.state["classes"])
        seen = truth >= 0
        result = classification_metrics(truth[seen], proba[seen].argmax(1), proba[seen], self.state["classes"])
        if not seen.all():
            result["rows_with_unseen_class"] = int((~seen).sum())
        return result


    # --- faces: explain the predicted class's probability --------------------------------------------------------

    def explained_score(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.softmax(raw, dim=1)

    def explained_score_name(self) -> str:
        return f"P(predicted {self.name})"

    def explained_class(self, raw: np.ndarray) -> np.ndarray | None:
        return raw.argmax(1)

    def report_section(self, inputs: list[Any], test: pd.DataFrame, raw: np.ndarray) -> str | None:
        from lamina.outputs.report_plots import category_section

        return category_section(self, test, raw)


def _natural(value: str) -> tuple[int, float | str]:
    """Numeric labels in numeric order (2 before 10), text labels alphabetically after them."""
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)
