"""Two-valued columns (yes/no, true/false, 0/1, any two labels): 0/1 plus a missing flag."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import pandas as pd
import torch
from torch import nn

from lamina.errors import LaminaError
from lamina.inputs.base import InputType, Options
from lamina.inputs.classical import Features

TRUE_WORDS = {"1", "1.0", "true", "t", "yes", "y", "positive", "pos"}


def label(value: Any) -> str:
    """A value's canonical text, so 1, 1.0, '1' and True from different file formats agree."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def positive_first(values: list[str]) -> list[str]:
    """Order two labels so the one that reads as 'true' (yes, 1, ...) is the positive class, else keep the order."""
    if len(values) == 2 and values[0].lower() in TRUE_WORDS and values[1].lower() not in TRUE_WORDS:
        return [values[1], values[0]]
    return values


class BinaryOptions(Options):
    positive: str | None = None


class BinaryInput(InputType):
    kind = "binary"
    Options = BinaryOptions
    passthrough = True

    def fit(self, values: pd.Series) -> None:
        seen = sorted({label(v) for v in values.dropna()})
        if len(seen) > 2:
            raise LaminaError(
                f"column '{self.name}': type binary but {len(seen)} distinct values ({', '.join(seen[:5])}...); "
                "declare it as a category"
            )
        if self.options.positive is not None:
            negative = [v for v in seen if v != self.options.positive]
            labels = [negative[0] if negative else "", self.options.positive]
        else:
            labels = positive_first(seen) if len(seen) == 2 else ["", *seen]
        self.state = {"labels": labels}

    def transform(self, values: pd.Series) -> torch.Tensor:
        negative, positive = self.state["labels"]
        text = values.map(label, na_action="ignore")
        is_pos = (text == positive).to_numpy(dtype=bool, na_value=False)
        known = is_pos | (text == negative).to_numpy(dtype=bool, na_value=False)
        unseen = values.notna().to_numpy() & ~known
        if unseen.any():
            import logging

            logging.getLogger("lamina").warning(
                "column '%s': %d value(s) other than %r/%r (first: %r) treated as missing",
                self.name, int(unseen.sum()), negative, positive, values[unseen].iloc[0],
            )
        x = np.where(is_pos, 1.0, np.where(known, 0.0, 0.5))
        return torch.from_numpy(np.stack([x, (~known).astype(np.float64)], axis=1).astype(np.float32))

    @property
    def width(self) -> int:
        return 2

    def encoder(self) -> nn.Module:
        return nn.Identity()

    # --- faces ----------------------------------------------------------------------------------------------------

    baseline_note = "binaries halfway"

    def classical_features(self, values: pd.Series) -> Features:
        x = self.transform(values).numpy().astype(np.float64)  # 0 / 1 (NaN for LightGBM when missing), missing flag
        return Features({self.name: np.where(x[:, 1] > 0, np.nan, x[:, 0])}, [x])

    def explain_baseline(self) -> list[float]:
        return [0.5, 0.0]  # halfway between the two values, not flagged missing

    def serve_field(self) -> tuple[Any, dict[str, Any]]:
        negative, positive = self.state.get("labels", ["", ""])
        return Optional[Union[bool, str, float]], {"description": f"{positive!r} or {negative!r} (or true/false); "
                                                                  "null for missing"}

    def page_widget(self) -> dict[str, Any]:
        return {"field": "category", "values": [v for v in self.state.get("labels", []) if v]}

    def example_values(self, rng: np.random.Generator, n: int) -> Any:
        return rng.choice(np.asarray([v for v in self.state["labels"] if v] or ["0"], dtype=object), n)
