"""What every input type is: fit on the training split, transform raw values, build an encoder.

A type keeps its fitted state in a small JSON-able dict, so the model directory can store it as text and the same
transform runs at training, evaluation and serving time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Optional, Union

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from lamina.errors import LaminaError
from lamina.inputs.classical import Featurizer, Features, flattened


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

    @classmethod
    def tune_space(cls) -> dict[str, dict[str, Any]]:
        """What ``lamina tune`` searches among this type's options: option name → a ``tune.space`` entry
        (``low``/``high``/``log``/``integer``, or ``choices``). Default: nothing of the type's own."""
        return {}


class InputType(ColumnType):
    """One column of the input layer.

    Subclasses set ``kind`` and ``Options`` and implement ``fit``, ``transform`` and ``encoder``.
    ``passthrough`` types (numbers, binaries) have the identity as encoder: the model concatenates their
    transformed values once per dataset instead of once per step, which keeps per-step overhead low.

    A type also owns its faces (the hooks below, each with a default a new type may keep): its classical features for
    ``compare``, its explanation baseline and unit, its request field and page widget for ``serve``, its example
    values and dynamic axes for ``export``. A face asks the type; it never tests ``kind``.
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

    # --- spatial inputs (images): the feature maps that box and mask outputs read ------------------------------

    # Whether the encoder has ``feature_maps(x)`` (finest first) for spatial outputs to read.
    spatial: ClassVar[bool] = False

    def spatial_encoder(self) -> nn.Module:
        """The encoder when a spatial output reads it: without its geometric augmentation, which training applies
        to the pixels and the targets together (``move``)."""
        raise NotImplementedError

    def map_shapes(self, encoder: nn.Module) -> list[tuple[int, int]]:
        """``(channels, stride)`` of each feature map, finest first."""
        raise NotImplementedError

    def canvas(self) -> tuple[int, int, str]:
        """The fitted picture every image becomes: height, width and how it is resized (``pad`` or ``crop``), so a
        spatial target can be placed the same way."""
        raise NotImplementedError

    def draw_move(self, n: int) -> torch.Tensor | None:
        """Training's random affine maps ``(n, 2, 3)`` (``F.affine_grid``'s: output → input, in [-1, 1]) for ``n``
        rows, drawn from the checkpointed CPU generator; None when this input does not move its pixels."""
        return None

    def move(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """The transformed rows ``x`` resampled through ``theta`` (what ``spatial_encoder`` then reads)."""
        raise NotImplementedError

    def at_own_size(self, values: pd.Series, scale: float = 1.0, beyond: tuple[int, int] = (0, 0)
                    ) -> list[torch.Tensor | None]:
        """Each row's picture ``(C, h, w)`` at ``scale`` times its own size rather than the fitted one (sliding-window
        inference tiles it); None where it cannot be read or is no larger than ``beyond`` (height, width)."""
        raise NotImplementedError

    @property
    def width(self) -> int:
        """Columns of the transformed tensor (for passthrough types, the encoder's output width)."""
        raise NotImplementedError

    # --- compare: classical features ------------------------------------------------------------------------------

    # Free text that a text output's classical counterparts may copy or look up (a translation memory).
    free_text: ClassVar[bool] = False

    def classical(self) -> Featurizer:
        """The featurizer ``lamina compare`` fits on the training split (its family says which models read it)."""
        return Featurizer(self)

    def classical_features(self, values: pd.Series) -> Features:
        """Default: the transformed values as they are, one feature per value."""
        return flattened(self.name, self.transform(values).numpy())

    def sole_input_counterparts(self, output: Any, split: dict[str, pd.DataFrame], y: dict[str, np.ndarray]
                                ) -> list[dict[str, Any]]:
        """compare's extra rows when this column is the model's one input (a series' 1-NN); default none."""
        return []

    # --- explain: baseline and unit -------------------------------------------------------------------------------

    explain_rows: ClassVar[int] = 300  # rows the report explains (Integrated Gradients: ~64 passes per row)
    baseline_note: ClassVar[str] = "other columns at their mean embedding (or the zero encoding)"

    def explain_baseline(self) -> list[float]:
        """Passthrough types: the transformed row that says nothing (one value per column of ``width``)."""
        return [0.0] * self.width

    def attribution(self, encoder: nn.Module) -> str:
        """Where attributions are taken: ``encoded`` (the encoder's output, one value per column), ``pixels`` (the
        encoder's input) or ``tokens`` (an encoder that is ``pool(keep, embed(ids))``: per token)."""
        return "encoded"

    # --- serve: request field and page widget ---------------------------------------------------------------------

    def serve_field(self) -> tuple[Any, dict[str, Any]]:
        """The JSON type of this input's request field and extra schema keywords (pydantic ``Field`` arguments)."""
        return Optional[Union[str, float]], {"description": f"a {self.kind} value"}

    def request_values(self, values: list[Any]) -> np.ndarray:
        """A request's validated field values as the column ``transform`` takes."""
        column = np.empty(len(values), dtype=object)
        column[:] = values
        return column

    def page_widget(self) -> dict[str, Any]:
        """What the web page at ``/`` draws for this input (``GET /model``'s entry): a ``field`` and its values."""
        if self.holds_paths:
            return {"field": "file", "accept": f"{self.kind}/*"}
        return {"field": "text"}

    # --- export: check rows and the ONNX input --------------------------------------------------------------------

    def example_values(self, rng: np.random.Generator, n: int) -> Any:
        """``n`` raw values drawn from the fitted state, to check an export without data."""
        raise LaminaError(f"input '{self.name}' (type {self.kind}): no example values to check the export with; "
                          "pass rows of real data (lamina export MODEL_DIR --data FILE)")

    def onnx_axes(self, tensor: torch.Tensor) -> list[int]:
        """The dynamic axes of this input's ONNX tensor: the batch, and the length of token ids / index lists."""
        return [0, 1] if tensor.dim() == 2 and not tensor.is_floating_point() else [0]
