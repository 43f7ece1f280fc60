"""Multi-valued categories ("Action|Comedy"): a vocabulary of the single values, and the mean of their embeddings."""

from __future__ import annotations

import logging
from typing import Any, Optional, Union

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn

from lamina.inputs.base import InputType, Options
from lamina.inputs.category import PAGE_VALUES_MAX, embedding_size
from lamina.inputs.classical import Features

PAD, UNKNOWN = 0, 1  # padding (left out of the mean), and rare or unseen values


class SetOptions(Options):
    separator: str = Field("|", min_length=1, description="what separates the values inside one cell")
    min_frequency: int = Field(1, ge=1, description="values seen fewer times in training share the unknown bucket")
    max_vocabulary: int = Field(10_000, ge=1)
    max_values: int = Field(64, ge=1, description="values kept per cell (the first ones)")
    embedding_dim: int | None = Field(None, ge=1, description="default: grows with the vocabulary, at most 64")


class BagMean(nn.Module):
    def __init__(self, rows: int, dim: int) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(rows, dim, mode="mean", padding_idx=PAD)
        self.out_dim = dim

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.bag(index)  # an empty (all-padding) cell gives zeros


class SetInput(InputType):
    kind = "set"

    @classmethod
    def tune_space(cls) -> dict[str, dict[str, Any]]:
        return {"embedding_dim": {"choices": [8, 16, 32, 64]}}
    Options = SetOptions

    def _split(self, values: pd.Series) -> pd.Series:
        sep = self.options.separator
        return values.map(lambda v: [t.strip() for t in str(v).split(sep) if t.strip()], na_action="ignore")

    def fit(self, values: pd.Series) -> None:
        counts = self._split(values).dropna().explode().dropna().value_counts()
        kept = counts[counts >= self.options.min_frequency].index[: self.options.max_vocabulary]
        self.state = {"vocabulary": sorted(str(v) for v in kept)}

    def transform(self, values: pd.Series) -> torch.Tensor:
        lookup = {v: i + 2 for i, v in enumerate(self.state["vocabulary"])}
        cells = [c if isinstance(c, list) else [] for c in self._split(values)]
        width = max(1, min(self.options.max_values, max((len(c) for c in cells), default=1)))
        index = np.full((len(cells), width), PAD, dtype=np.int64)
        unseen = 0
        for row, cell in enumerate(cells):
            codes = [lookup.get(t, UNKNOWN) for t in cell[:width]]
            unseen += codes.count(UNKNOWN)
            index[row, : len(codes)] = codes
        if unseen:
            logging.getLogger("lamina").warning(
                "column '%s': %d value(s) not seen in training use the unknown embedding", self.name, unseen)
        return torch.from_numpy(index)

    @property
    def width(self) -> int:
        return self.options.embedding_dim or embedding_size(len(self.state["vocabulary"]) + 2)

    def encoder(self) -> nn.Module:
        return BagMean(len(self.state["vocabulary"]) + 2, self.width)

    # --- faces ----------------------------------------------------------------------------------------------------

    baseline_note = "sets at the mean embedding"

    def classical_features(self, values: pd.Series) -> Features:
        """Multi-hot over the training vocabulary (and the unknown bucket, for the linear model)."""
        index = self.transform(values).numpy()
        hot = np.zeros((len(index), len(self.state["vocabulary"]) + 2))
        np.put_along_axis(hot, index, 1.0, axis=1)
        hot[:, PAD] = 0.0
        return Features({f"{self.name}={v}": hot[:, i + 2] for i, v in enumerate(self.state["vocabulary"])},
                        [hot[:, 1:]])

    def serve_field(self) -> tuple[Any, dict[str, Any]]:
        return Optional[Union[str, list[str]]], {"description": f"values separated by {self.options.separator!r}, "
                                                               "or a list"}

    def request_values(self, values: list[Any]) -> np.ndarray:
        sep = self.options.separator
        return super().request_values([sep.join(map(str, v)) if isinstance(v, list) else v for v in values])

    def page_widget(self) -> dict[str, Any]:
        vocabulary = self.state.get("vocabulary", [])
        return {"field": "text", "values": vocabulary[:PAGE_VALUES_MAX], "vocabulary_size": len(vocabulary)}
