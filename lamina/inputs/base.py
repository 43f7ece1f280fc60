"""What every input type is: fit on the training split, transform raw values, build an encoder.

A type keeps its fitted state in a small JSON-able dict, so the model directory can store it as text and the same
transform runs at training, evaluation and serving time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn


class Options(BaseModel):
    """Base for a type's options: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class ColumnType:
    """A column's type: its name, its options and the state fitted on the training split (plain JSON)."""

    kind: ClassVar[str]
    Options: ClassVar[type[Options]] = Options
    # The fitted state's schema, checked when a model directory is loaded (None: any JSON object).
    state_schema: ClassVar[type[BaseModel] | None] = None

    def __init__(self, name: str, options: Options, state: dict[str, Any] | None = None) -> None:
        self.name = name
        self.options = options
        self.state: dict[str, Any] = state or {}

    def fit(self, values: pd.Series) -> None:
        raise NotImplementedError

    def transform(self, values: pd.Series) -> torch.Tensor:
        raise NotImplementedError


class InputType(ColumnType):
    """One column of the input layer.

    Subclasses set ``kind`` and ``Options`` and implement ``fit``, ``transform`` and ``encoder``.
    ``passthrough`` types (numbers, binaries) have the identity as encoder: the model concatenates their
    transformed values once per dataset instead of once per step, which keeps per-step overhead low.
    """

    passthrough: ClassVar[bool] = False
    # Values are file paths (images): relative ones are resolved against the table's folder when it is read.
    holds_paths: ClassVar[bool] = False
    # Where a type may keep derived files (decoded images) between transforms; set by the preprocessor.
    cache_dir: Path | None = None

    def usable(self, values: pd.Series) -> np.ndarray | None:
        """A boolean mask of the rows this type can use, or None when every row is usable."""
        return None

    def encoder(self) -> nn.Module:
        """An ``nn.Module`` with an ``out_dim`` attribute, mapping the transformed tensor to ``(batch, out_dim)``."""
        raise NotImplementedError

    @property
    def width(self) -> int:
        """Columns of the transformed tensor (for passthrough types, the encoder's output width)."""
        raise NotImplementedError
