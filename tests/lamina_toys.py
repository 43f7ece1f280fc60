"""Two column types defined outside the ``lamina`` package, as another package would define them: they register
through the ``lamina.inputs`` / ``lamina.outputs`` entry points (``tests/test_plugins.py`` writes the dist-info)
and keep the built-in types' contract, relying on the base classes' defaults for every face they do not need.

* ``log_number`` (input): a skewed non-negative number (a count, an amount), read as log(1 + x) standardised, with
  a missing flag -- passed straight to the hidden layers like the built-in numbers;
* ``count`` (output): a count target under a Poisson model: the head gives the log of the expected count, the loss
  is the Poisson negative log-likelihood, and the metric that judges it is the mean Poisson deviance (lower is
  better), which ``lamina compare`` and early stopping then use instead of anything built in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from lamina.errors import LaminaError
from lamina.inputs.base import InputType
from lamina.outputs.base import OutputType


def _numbers(values: pd.Series, column: str) -> np.ndarray:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isnan(x) & (x < 0)
    if bad.any():
        raise LaminaError(f"column '{column}' row {int(np.flatnonzero(bad)[0])}: {x[bad][0]} is negative; a "
                          "log_number is a count or an amount (zero or more)")
    return x


class LogNumberInput(InputType):
    kind = "log_number"
    passthrough = True

    def fit(self, values: pd.Series) -> None:
        x = np.log1p(_numbers(values, self.name))
        x = x[np.isfinite(x)]
        if x.size == 0:
            raise LaminaError(f"column '{self.name}': no values in the training split")
        self.state = {"mean": float(x.mean()), "std": float(x.std()) or 1.0}

    def transform(self, values: pd.Series) -> torch.Tensor:
        x = np.log1p(_numbers(values, self.name))
        missing = ~np.isfinite(x)
        scaled = np.where(missing, 0.0, (x - self.state["mean"]) / self.state["std"])
        return torch.from_numpy(np.stack([scaled, missing.astype(np.float64)], axis=1).astype(np.float32))

    @property
    def width(self) -> int:
        return 2

    def encoder(self) -> nn.Module:
        return nn.Identity()

    baseline_note = "log numbers at their training mean"

    def example_values(self, rng: np.random.Generator, n: int) -> Any:
        return np.expm1(self.state["mean"] + self.state["std"] * rng.standard_normal(n)).clip(0)


class PoissonLoss(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fn = nn.PoissonNLLLoss(log_input=True, full=False)

    def forward(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fn(raw[:, 0], target)


class CountOutput(OutputType):
    kind = "count"
    primary_metric = "poisson_deviance"
    higher_is_better = False
    metric_names = ("poisson_deviance", "mae")
    lower_is_better = frozenset({"mae"})
    task = "regression"

    def fit(self, values: pd.Series) -> None:
        y = _numbers(values, self.name)
        y = y[np.isfinite(y)]
        if y.size == 0 or np.any(y != np.round(y)):
            raise LaminaError(f"target '{self.name}': a count target needs whole numbers of zero or more")
        self.state = {"mean": float(y.mean())}

    def transform(self, values: pd.Series) -> torch.Tensor:
        return torch.from_numpy(_numbers(values, self.name).astype(np.float32))

    def head(self, in_dim: int) -> nn.Module:
        head = nn.Linear(in_dim, 1)
        nn.init.constant_(head.bias, float(np.log(max(self.state["mean"], 1e-3))))  # start at the mean count
        return head

    def loss(self) -> nn.Module:
        return PoissonLoss()

    def expected(self, raw: np.ndarray) -> np.ndarray:
        return np.exp(np.clip(raw[:, 0].astype(np.float64), -20, 20))

    def decode(self, raw: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({self.name: self.expected(raw)})

    def metrics(self, values: pd.Series, raw: np.ndarray) -> dict[str, Any]:
        from sklearn.metrics import mean_absolute_error, mean_poisson_deviance

        truth, mu = _numbers(values, self.name), self.expected(raw)
        return {"poisson_deviance": float(mean_poisson_deviance(truth, mu)),
                "mae": float(mean_absolute_error(truth, mu))}

    def classical_raw(self, model: Any, x: Any) -> np.ndarray:
        """A regressor of the count itself → the head's log expected count."""
        return np.log(np.clip(np.asarray(model.predict(x), dtype=np.float64), 1e-6, None))[:, None]

    def explained_score_name(self) -> str:
        return f"log expected {self.name}"
