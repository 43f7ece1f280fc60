"""Categories: a vocabulary from the training split, an out-of-vocabulary bucket, and an embedding."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from lamina.inputs.base import InputType, Options
from lamina.inputs.binary import label

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
