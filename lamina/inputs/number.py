"""Numbers: standardised with training statistics; a missing value is filled with the mean and flagged."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal, Optional

import numpy as np
import pandas as pd
import torch
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from torch import nn

from lamina.errors import LaminaError, row_name
from lamina.inputs.base import InputType, Options
from lamina.inputs.classical import Features

log = logging.getLogger("lamina")


class NumberOptions(Options):
    normalization: Literal["zscore", "minmax", "none", "log"] = Field(
        "zscore", description="log: sign(x)·log(1 + |x|), then z-scored: for counts and sizes spanning decades "
                              "(bytes, durations), whose z-scores would crowd most rows into a sliver near the mean")


def signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


# The network computes in float32: a number beyond its range (about ±3.4e38) cannot be one of its inputs or
# targets, whatever the scaling. Such values, and infinities, are refused; a missing value (empty, NaN) is not.
LARGEST = 1e38


def _in_range(value: float) -> float:
    if abs(value) > LARGEST:
        raise ValueError(f"out of the range numbers can have (±{LARGEST:g}); send null for a missing value")
    return value


# A request's number field: null is a missing value; Infinity, NaN (which Python's JSON parser reads) and magnitudes
# the network cannot compute with are refused (the server answers 422 naming the field), as a file's would be.
REQUEST_NUMBER = Optional[Annotated[float, Field(allow_inf_nan=False), AfterValidator(_in_range)]]
# A standardised input this many scales from the training values is clipped here, so that no finite input can
# overflow the network (1e6 scales is already far beyond anything the training split showed it).
CLIP = 1e6


def to_numbers(values: pd.Series, column: str, type_name: str = "number") -> np.ndarray:
    """Parse a column as float64, naming the first row that is not a number or is out of range."""
    if values.dtype.kind in "biuf":  # already numbers (the usual case, and a served row's): nothing to parse
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        parsed = pd.to_numeric(values, errors="coerce")
        bad = parsed.isna() & values.notna()
        if bad.any():
            row = bad.idxmax()
            raise LaminaError(
                f"column '{column}' row {row_name(row)}: {shorten(values[row])} is not a number, but the column's "
                f"type is {type_name}; fix the value or declare the column as a category"
            )
        numbers = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    out_of_range = np.abs(numbers) > LARGEST  # NaN compares False: a missing value passes
    if out_of_range.any():
        position = int(np.argmax(out_of_range))
        raise LaminaError(
            f"column '{column}' row {row_name(values.index[position])}: {numbers[position]:g} is out of the range "
            f"numbers can have (±{LARGEST:g}); fix the value, rescale the column, or leave the cell empty if it is "
            "missing"
        )
    return numbers


def shorten(value: object, limit: int = 80) -> str:
    """A value as a message quotes it: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def moments(finite: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation computed on values divided by their largest magnitude, so that neither the
    sum nor the squares overflow float64 whatever finite values the column holds."""
    top = float(np.abs(finite).max())
    if top == 0:
        return 0.0, 0.0
    unit = finite / top
    return float(unit.mean()) * top, float(unit.std()) * top


class NumberState(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    shift: float = Field(allow_inf_nan=False)
    scale: float = Field(gt=0, allow_inf_nan=False)
    fill: float = Field(allow_inf_nan=False)


class NumberInput(InputType):
    kind = "number"
    Options = NumberOptions
    state_schema = NumberState
    passthrough = True

    def _warp(self, x: np.ndarray) -> np.ndarray:
        """The values the scaling applies to: the numbers themselves, or their signed log."""
        return signed_log(x) if self.options.normalization == "log" else x

    def fit(self, values: pd.Series) -> None:
        x = to_numbers(values, self.name)
        finite = x[np.isfinite(x)]
        if finite.size == 0:
            raise LaminaError(f"column '{self.name}': no numeric values in the training split; drop the column")
        warped = self._warp(finite)
        low, high = float(warped.min()), float(warped.max())
        centre, std = moments(warped)
        # the fill value is a number of the column's own (served pages show it): for log, the one at the logs' mean
        mean = float(np.sign(centre) * np.expm1(abs(centre))) if self.options.normalization == "log" else centre
        if self.options.normalization in ("zscore", "log"):
            shift, scale = centre, std if std > 0 else 1.0
        elif self.options.normalization == "minmax":
            shift, scale = low, (high - low) if high > low else 1.0
        else:
            shift, scale = 0.0, 1.0
        # The fill value is the mean, so after scaling a missing value sits at the centre and the flag tells it apart.
        self.state = {"shift": shift, "scale": scale, "fill": mean}

    def transform(self, values: pd.Series) -> torch.Tensor:
        x = to_numbers(values, self.name)
        missing = ~np.isfinite(x)
        x = self._warp(np.where(missing, self.state["fill"], x))
        # x/scale - shift/scale, not (x - shift)/scale: the difference of two large values could overflow.
        scaled = x / self.state["scale"] - self.state["shift"] / self.state["scale"]
        far = np.abs(scaled) > CLIP
        if far.any():
            position = int(np.argmax(far))
            log.warning("column '%s': %d value(s) more than %g scales from the training values clipped to it "
                        "(row %s: %g)", self.name, int(far.sum()), CLIP, row_name(values.index[position]), x[position])
            scaled = np.clip(scaled, -CLIP, CLIP)
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
        return [(float(self._warp(np.asarray(s["fill"]))) - s["shift"]) / s["scale"], 0.0]

    def serve_field(self) -> tuple[Any, dict[str, Any]]:
        return REQUEST_NUMBER, {"description": f"a number from -{LARGEST:g} to {LARGEST:g}; null for missing"}

    def request_values(self, values: list[Any]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    def page_widget(self) -> dict[str, Any]:
        return {"field": "number", "default": self.state.get("fill")}

    def example_values(self, rng: np.random.Generator, n: int) -> Any:
        s = self.state
        return s["fill"] + rng.standard_normal(n) * (s["scale"] or 1.0) * 1.5
