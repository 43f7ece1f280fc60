"""The text encoders that learn from token ids: a bag of embeddings, a CNN and a transformer.

Each is ``pool(keep, embed(ids))`` and ignores padding (masked mean, masked max-pool, key padding mask), so a row's
vector does not depend on how far it was padded. The hashed bag is ``lamina.inputs.text_hashing``; MiniLM is
``lamina.inputs.text_pretrained``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lamina.inputs import text_hashing

PAD = 0  # the tokenizer's [PAD] id

EVAL_TOKENS = 1 << 16  # token positions per inference chunk: a CNN's maps stay near 0.1 GB, not 3 GB per 4,096 rows


def trim(ids: torch.Tensor) -> torch.Tensor:
    """A training batch cut to its longest row: with length bucketing (``lamina.buckets``) most padding goes."""
    return ids[:, : max(int((ids != PAD).sum(1).max()), 1)]


def pooled(encoder: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """``encoder.pool(keep, encoder.embed(ids))``, trimmed to the longest row; outside training in chunks of rows
    of at most ``EVAL_TOKENS`` positions, each trimmed to its own longest row, so prediction's memory does not grow
    with the batch (4,096 rows of 256 tokens took 3.1 GB in a CNN's feature maps). Exporting runs it whole."""
    if text_hashing.exporting():
        return encoder.pool(ids != PAD, encoder.embed(ids))
    if encoder.training or len(ids) <= 1 or ids.shape[0] * ids.shape[1] <= EVAL_TOKENS:
        ids = trim(ids)
        return encoder.pool(ids != PAD, encoder.embed(ids))
    step = max(1, EVAL_TOKENS // ids.shape[1])
    return torch.cat([pooled(encoder, chunk) for chunk in ids.split(step)])


def _masked_mean(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    w = keep.unsqueeze(-1).to(x.dtype)
    return (x * w).sum(1) / w.sum(1).clamp(min=1.0)


class BagEncoder(nn.Module):
    """Mean of the token embeddings (padding left out): fast, order-free."""

    def __init__(self, vocabulary: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = dim

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids)

    def pool(self, keep: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        return self.dropout(_masked_mean(embedded, keep))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return pooled(self, ids)

    def with_states(self, ids: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The pooled vector and the per-token states ``(n, L, state_dim)`` with their mask (for decoders)."""
        ids = trim(ids) if self.training else ids
        keep, embedded = ids != PAD, self.embed(ids)
        return self.pool(keep, embedded), (self.dropout(embedded), keep)

    @property
    def state_dim(self) -> int:
        return self.out_dim


class CNNEncoder(nn.Module):
    """Convolutions of several widths over the embeddings, ReLU, max over the real (unpadded) positions."""

    def __init__(self, vocabulary: int, dim: int, kernel_sizes: list[int], channels: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, dim, padding_idx=PAD)
        self.convs = nn.ModuleList(nn.Conv1d(dim, channels, k, padding="same") for k in kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = channels * len(kernel_sizes)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids)

    def pool(self, keep: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        return self._pool(keep, embedded)[0]

    def _pool(self, keep: torch.Tensor, embedded: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = (self.dropout(embedded) * keep.unsqueeze(-1).to(embedded.dtype)).transpose(1, 2)  # (n, dim, L)
        pooled, maps = [], []
        for conv in self.convs:
            maps.append(torch.relu(conv(x)))
            h = maps[-1].masked_fill(~keep.unsqueeze(1), float("-inf")).amax(2)
            pooled.append(torch.where(torch.isfinite(h), h, torch.zeros_like(h)))  # an empty row gives zeros
        return self.dropout(torch.cat(pooled, 1)), maps

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return pooled(self, ids)

    def with_states(self, ids: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The pooled vector and the per-token feature maps ``(n, L, state_dim)`` with their mask (for decoders)."""
        ids = trim(ids) if self.training else ids
        keep = ids != PAD
        pooled, maps = self._pool(keep, self.embed(ids))
        return pooled, (self.dropout(torch.cat(maps, 1).transpose(1, 2)), keep)

    @property
    def state_dim(self) -> int:
        return self.out_dim


def sinusoidal(length: int, dim: int) -> torch.Tensor:
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    scale = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * scale)
    table[:, 1::2] = torch.cos(position * scale)[:, : dim // 2]
    return table


class TransformerEncoder(nn.Module):
    """Token + position embeddings → pre-norm transformer blocks with a key padding mask → masked mean or [CLS]."""

    def __init__(self, vocabulary: int, dim: int, max_length: int, layers: int, heads: int, ff_dim: int,
                 positions: str, pooling: str, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, dim, padding_idx=PAD)
        if positions == "learned":
            self.positions = nn.Embedding(max_length, dim)
        else:
            self.register_buffer("table", sinusoidal(max_length, dim), persistent=False)
            self.positions = None
        block = nn.TransformerEncoderLayer(dim, heads, ff_dim, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.pooling = pooling
        self.out_dim = dim

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids)

    def pool(self, keep: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        return self._pool(keep, embedded)[0]

    def with_states(self, ids: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The pooled vector and the last block's token states ``(n, L, state_dim)`` with their mask (for decoders)."""
        ids = trim(ids) if self.training else ids
        return self._pool(ids != PAD, self.embed(ids))

    @property
    def state_dim(self) -> int:
        return self.out_dim

    def _pool(self, keep: torch.Tensor, embedded: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        table = self.positions.weight if self.positions is not None else self.table
        if keep.shape[1] > len(table):  # only padding lies beyond max_length (transform truncates)
            keep, embedded = keep[:, : len(table)], embedded[:, : len(table)]
        x = self.dropout(embedded + table[: keep.shape[1]])
        padding = ~keep
        empty = padding.all(1)
        padding = padding.clone()
        padding[:, 0] &= ~empty  # an all-padding row would attend to nothing (NaN): let it see one position
        h = self.blocks(x, src_key_padding_mask=padding)
        out = h[:, 0] if self.pooling == "cls" else _masked_mean(h, ~padding)
        return out.masked_fill(empty.unsqueeze(1), 0.0), (h, ~padding)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return pooled(self, ids)


# --- the type -------------------------------------------------------------------------------------------------------
