"""What every output type is: fit on the training targets, a head, a loss, metrics and decoding.

Mirrors ``lamina.inputs.base``: the fitted state is a JSON-able dict stored in the model directory.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from lamina.inputs.base import ColumnType


class OutputType(ColumnType):
    """One target of the output layer.

    ``transform`` turns raw target values into the tensor the loss wants; ``decode`` turns the head's raw outputs
    (a float array) into user-facing columns; ``metrics`` scores decoded predictions against raw targets.
    ``primary_metric`` is what early stopping watches by default, with ``higher_is_better``.
    """

    primary_metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    metric_names: ClassVar[tuple[str, ...]]
    # Sequence outputs (text) are generated token by token: their head also takes the inputs' token states and,
    # in training, the target itself (``lamina.model``).
    sequence: ClassVar[bool] = False

    def head(self, in_dim: int) -> nn.Module:
        raise NotImplementedError

    def loss(self) -> nn.Module:
        """A module ``loss(raw_output, target) -> scalar``."""
        raise NotImplementedError

    def known(self, values: pd.Series) -> np.ndarray:
        """Which target values the fitted output can score (class outputs: classes seen in training)."""
        return np.ones(len(values), dtype=bool)

    def calibrate(self, raw: np.ndarray, values: pd.Series) -> None:
        """Tune decoding on the validation split (e.g. a decision threshold). Default: nothing to tune."""

    def average(self, raws: torch.Tensor) -> torch.Tensor:
        """The raw output of an ensemble from its members' ``(members, rows, width)`` raw outputs (lamina.ensemble).
        Default: their mean (numbers: the mean prediction). Class outputs average probabilities instead."""
        return raws.mean(0)

    def decode(self, raw: np.ndarray) -> pd.DataFrame:
        """Raw head outputs → a frame whose first column (named after the output) is the prediction."""
        raise NotImplementedError

    def metrics(self, values: pd.Series, raw: np.ndarray) -> dict[str, Any]:
        """Scores of raw head outputs against raw target values (rows with a missing target already removed)."""
        raise NotImplementedError
