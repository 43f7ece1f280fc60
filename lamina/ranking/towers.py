"""The two towers: a user tower and an item tower, each built from Lamina's input types (an ID is a category
embedding, side columns use their own type's encoder), hidden blocks, and a projection to the shared space.

The user tower can also see the user's history: the mean embedding of the items the user had in training (an
EmbeddingBag over a padded item matrix). A pair's score is the cosine of the two vectors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lamina.config import HiddenConfig
from lamina.hidden import Hidden
from lamina.inputs.base import InputType
from lamina.model import DENSE


class Tower(nn.Module):
    def __init__(self, inputs: list[InputType], hidden: HiddenConfig, dim: int, extra: int = 0) -> None:
        super().__init__()
        self.dense_width = sum(t.width for t in inputs if t.passthrough)
        self.input_names = [t.name for t in inputs if not t.passthrough]
        self.encoders = nn.ModuleList(t.encoder() for t in inputs if not t.passthrough)
        self.hidden = Hidden(self.dense_width + sum(e.out_dim for e in self.encoders) + extra, hidden)
        self.project = nn.Linear(self.hidden.out_dim, dim)

    def forward(self, batch: dict[str, torch.Tensor], extra: torch.Tensor | None = None) -> torch.Tensor:
        parts = [batch[DENSE]] if self.dense_width else []
        parts += [encoder(batch[name]) for name, encoder in zip(self.input_names, self.encoders)]
        if extra is not None:
            parts.append(extra)
        return F.normalize(self.project(self.hidden(torch.cat(parts, dim=1))), dim=-1)


class TwoTower(nn.Module):
    def __init__(self, user_inputs: list[InputType], item_inputs: list[InputType], hidden: HiddenConfig, dim: int,
                 n_items: int, history: bool, recent: int = 0) -> None:
        super().__init__()
        self.n_items = n_items
        # Row n_items is the padding of the history matrix: left out of the sum.
        self.history = nn.EmbeddingBag(n_items + 1, dim, mode="sum", padding_idx=n_items) if history else None
        # The last few items before the moment scored: what the user is into now (temporal data rewards it).
        self.recent = nn.EmbeddingBag(n_items + 1, dim, mode="mean", padding_idx=n_items) if recent else None
        extra = dim * (bool(history) + bool(recent))
        self.user = Tower(user_inputs, hidden, dim, extra=extra)
        self.item = Tower(item_inputs, hidden, dim)

    def user_vectors(self, batch: dict[str, torch.Tensor], history: torch.Tensor | None = None,
                     leave_out: torch.Tensor | None = None, recent: torch.Tensor | None = None) -> torch.Tensor:
        """``history``: (users, length) item codes padded with ``n_items``; ``leave_out``: per user an item of the
        history to take out of the mean (the training target, so the tower cannot just find it), or ``n_items``;
        ``recent``: (users, n) the items just before the moment scored, padded with ``n_items``."""
        extras = []
        rows = len(next(iter(batch.values())))
        if self.recent is not None:
            if recent is None:
                recent = torch.full((rows, 1), self.n_items, dtype=torch.long)
            extras.append(self.recent(recent))
        if self.history is not None:
            if history is None:
                history = torch.full((rows, 1), self.n_items, dtype=torch.long)
            total = self.history(history)
            count = (history != self.n_items).sum(dim=1, keepdim=True).float()
            if leave_out is not None:
                inside = (leave_out != self.n_items).unsqueeze(1)
                total = total - self.history.weight[leave_out] * inside
                count = count - inside.float()
            extras.append(total / count.clamp(min=1))
        return self.user(batch, torch.cat(extras, dim=1) if extras else None)

    def item_vectors(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.item(batch)
