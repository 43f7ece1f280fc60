"""Categories: a vocabulary from the training split, an out-of-vocabulary bucket, and an embedding."""

from __future__ import annotations

import logging
from typing import Any, Optional, Union

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from lamina.inputs.base import InputType, Options
from lamina.inputs.binary import label
from lamina.inputs.classical import Features

ENUM_MAX = 50  # a vocabulary is listed in the request schema (as an enum) up to this many values
PAGE_VALUES_MAX = 1000  # values sent to the web page by GET /model

UNKNOWN, MISSING = 0, 1  # reserved rows of the embedding: rare or unseen values, and missing values


class CategoryOptions(Options):
    min_frequency: int = Field(1, ge=1, description="values seen fewer times in training share the unknown bucket")
    max_vocabulary: int = Field(10_000, ge=1)
    embedding_dim: int | None = Field(None, ge=1, description="default: grows with the vocabulary, at most 64")


def embedding_size(vocabulary: int) -> int:
    # fastai's rule of thumb: wide enough to separate values, sublinear so large vocabularies stay cheap.
    return int(min(64, round(1.6 * vocabulary**0.56)))


class Embedding(nn.Module):
    def __init__(self, rows: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(rows, dim)
        self.out_dim = dim

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.embedding(index)


class VocabularyState(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    vocabulary: list[str]


class CategoryInput(InputType):
    kind = "category"

    @classmethod
    def tune_space(cls) -> dict[str, dict[str, Any]]:
        return {"embedding_dim": {"choices": [4, 8, 16, 32, 64]}}
    Options = CategoryOptions
    state_schema = VocabularyState

    def fit(self, values: pd.Series) -> None:
        counts = values.dropna().map(label).value_counts()
        kept = counts[counts >= self.options.min_frequency].index[: self.options.max_vocabulary]
        self.state = {"vocabulary": sorted(str(v) for v in kept)}

    def transform(self, values: pd.Series) -> torch.Tensor:
        lookup = {v: i + 2 for i, v in enumerate(self.state["vocabulary"])}
        text = values.map(label, na_action="ignore")
        index = text.map(lookup).to_numpy(dtype=np.float64, na_value=np.nan)
        missing = values.isna().to_numpy()
        unseen = ~missing & np.isnan(index)
        if unseen.any():
            logging.getLogger("lamina").warning(
                "column '%s': %d value(s) not seen in training (e.g. %r) use the unknown-category embedding",
                self.name, int(unseen.sum()), text[unseen].iloc[0],
            )
        index = np.where(missing, MISSING, np.where(unseen, UNKNOWN, np.nan_to_num(index)))
        return torch.from_numpy(index.astype(np.int64))

    @property
    def width(self) -> int:
        return self.options.embedding_dim or embedding_size(len(self.state["vocabulary"]) + 2)

    def encoder(self) -> nn.Module:
        return Embedding(len(self.state["vocabulary"]) + 2, self.width)

    # --- faces ----------------------------------------------------------------------------------------------------

    baseline_note = "categories at the mean embedding"

    def classical_features(self, values: pd.Series) -> Features:
        """A pandas ``category`` column for LightGBM; one-hot (unknown, missing, the vocabulary) for linear models."""
        index = self.transform(values).numpy()
        vocabulary = self.state["vocabulary"]
        codes = np.where(index >= 2, index - 2, -1)
        tree = pd.Categorical.from_codes(codes, categories=vocabulary) if vocabulary else np.full(len(index), np.nan)
        onehot = np.zeros((len(index), len(vocabulary) + 2))
        onehot[np.arange(len(index)), index] = 1.0
        return Features({self.name: tree}, [onehot])

    def serve_field(self) -> tuple[Any, dict[str, Any]]:
        vocabulary = self.state.get("vocabulary", [])
        extra: dict[str, Any] = {"description": f"one of {len(vocabulary)} values seen in training (others use the "
                                                "unknown-category embedding); null for missing"}
        if len(vocabulary) <= ENUM_MAX:
            extra["json_schema_extra"] = {"enum": [*vocabulary, None]}
        return Optional[Union[str, int, float]], extra

    def page_widget(self) -> dict[str, Any]:
        vocabulary = self.state.get("vocabulary", [])
        return {"field": "category", "values": vocabulary[:PAGE_VALUES_MAX], "vocabulary_size": len(vocabulary)}

    def example_values(self, rng: np.random.Generator, n: int) -> Any:
        return rng.choice(np.asarray([*self.state["vocabulary"], "never seen in training"], dtype=object), n)
