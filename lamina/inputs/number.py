"""Numbers: standardised with training statistics; a missing value is filled with the mean and flagged."""

from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
import torch
from torch import nn

from lamina.errors import LaminaError, row_name
from lamina.inputs.base import InputType, Options
from lamina.inputs.classical import Features


class NumberOptions(Options):
    normalization: Literal["zscore", "minmax", "none"] = "zscore"


def to_numbers(values: pd.Series, column: str, type_name: str = "number") -> np.ndarray:
    """Parse a column as float64, naming the first row that is not a number."""
    if values.dtype.kind in "biuf":  # already numbers (the usual case, and a served row's): nothing to parse
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        row = bad.idxmax()
        raise LaminaError(
            f"column '{column}' row {row_name(row)}: {values[row]!r} is not a number, but the column's type is {type_name}; "
            "fix the value or declare the column as a category"
        )
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)


class NumberInput(InputType):
    kind = "number"
    Options = NumberOptions
    passthrough = True

    def fit(self, values: pd.Series) -> None:
        x = to_numbers(values, self.name)
        finite = x[np.isfinite(x)]
        if finite.size == 0:
            raise LaminaError(f"column '{self.name}': no numeric values in the training split; drop the column")
        mean, std = float(finite.mean()), float(finite.std())
        low, high = float(finite.min()), float(finite.max())
        if self.options.normalization == "zscore":
            shift, scale = mean, std if std > 0 else 1.0
        elif self.options.normalization == "minmax":
            shift, scale = low, (high - low) if high > low else 1.0
        else:
            shift, scale = 0.0, 1.0
        # The fill value is the mean, so after scaling a missing value sits at the centre and the flag tells it apart.
        self.state = {"shift": shift, "scale": scale, "fill": mean}

    def transform(self, values: pd.Series) -> torch.Tensor:
        x = to_numbers(values, self.name)
        missing = ~np.isfinite(x)
        x = np.where(missing, self.state["fill"], x)
        scaled = (x - self.state["shift"]) / self.state["scale"]
        return torch.from_numpy(np.stack([scaled, missing.astype(np.float64)], axis=1).astype(np.float32))

    @property
    def width(self) -> int:
        return 2

    def encoder(self) -> nn.Module:
        return nn.Identity()

    # --- faces ----------------------------------------------------------------------------------------------------

    baseline_note = "numbers at their training mean"

    def classical_features(self, values: pd.Series) -> Features:
        """The raw value for LightGBM (NaN when missing); scaled value and missing flag for the linear model."""
        x = self.transform(values).numpy().astype(np.float64)
        return Features({self.name: np.where(x[:, 1] > 0, np.nan, x[:, 0])}, [x])

    def explain_baseline(self) -> list[float]:
        s = self.state  # the training mean, scaled as transform scales it; not missing
        return [(s["fill"] - s["shift"]) / s["scale"], 0.0]

    def serve_field(self) -> tuple[Any, dict[str, Any]]:
        return Optional[float], {"description": "a number; null for missing"}

    def request_values(self, values: list[Any]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    def page_widget(self) -> dict[str, Any]:
        return {"field": "number", "default": self.state.get("fill")}

    def example_values(self, rng: np.random.Generator, n: int) -> Any:
        s = self.state
        return s["fill"] + rng.standard_normal(n) * (s["scale"] or 1.0) * 1.5
