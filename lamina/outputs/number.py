"""Number targets: a linear head on a (by default) standardised target; MSE or Huber loss."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from sklearn import metrics as skm
from torch import nn

from lamina.errors import LaminaError
from lamina.inputs.base import Options
from lamina.inputs.number import moments, to_numbers
from lamina.outputs.base import OutputType


class NumberOptions(Options):
    loss: Literal["mse", "huber"] = "mse"
    huber_delta: float = Field(1.0, gt=0)
    standardize: bool = Field(True, description="train on (y - mean) / std: keeps the loss scale-free")
    loss_weight: float = Field(1.0, gt=0)


class NumberState(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    mean: float = Field(allow_inf_nan=False)
    std: float = Field(gt=0, allow_inf_nan=False)


class NumberOutput(OutputType):
    kind = "number"
    Options = NumberOptions
    state_schema = NumberState
    primary_metric = "rmse"
    higher_is_better = False
    metric_names = ("rmse", "mae", "r2")
    lower_is_better = frozenset({"rmse", "mae"})
    task = "regression"

    def fit(self, values: pd.Series) -> None:
        y = to_numbers(values, self.name)
        y = y[np.isfinite(y)]
        if y.size < 2:
            raise LaminaError(f"target '{self.name}': fewer than two numeric values in the training split")
        mean, std = moments(y)
        if self.options.standardize:
            self.state = {"mean": mean, "std": std if std > 0 else 1.0}
        else:
            self.state = {"mean": 0.0, "std": 1.0}

    def transform(self, values: pd.Series) -> torch.Tensor:
        y = to_numbers(values, self.name)
        return torch.from_numpy((y / self.state["std"] - self.state["mean"] / self.state["std"]).astype(np.float32))

    def head(self, in_dim: int) -> nn.Module:
        return nn.Linear(in_dim, 1)

    def loss(self) -> nn.Module:
        return NumberLoss(self.options.loss, self.options.huber_delta)

    def _values(self, raw: np.ndarray) -> np.ndarray:
        return raw[:, 0].astype(np.float64) * self.state["std"] + self.state["mean"]

    def decode(self, raw: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({self.name: self._values(raw)})

    def metrics(self, values: pd.Series, raw: np.ndarray) -> dict[str, Any]:
        truth, predicted = to_numbers(values, self.name), self._values(raw)
        return {
            "rmse": float(np.sqrt(skm.mean_squared_error(truth, predicted))),
            "mae": float(skm.mean_absolute_error(truth, predicted)),
            "r2": float(skm.r2_score(truth, predicted)),
        }


    def report_section(self, inputs: list[Any], test: pd.DataFrame, raw: np.ndarray) -> str | None:
        from lamina.outputs.report_plots import value_section

        return value_section(self, test, self._values(raw))


class NumberLoss(nn.Module):
    def __init__(self, kind: str, delta: float) -> None:
        super().__init__()
        self.fn = nn.HuberLoss(delta=delta) if kind == "huber" else nn.MSELoss()

    def forward(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fn(raw.squeeze(1), target)
