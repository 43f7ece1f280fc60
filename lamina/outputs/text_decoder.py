"""The sequence head: a pre-norm transformer decoder that cross-attends to the encoded inputs, and its search.

Written here rather than with ``nn.TransformerDecoder`` because generation needs a key/value cache: each new token
attends to the cached keys of the tokens before it (one query per step) instead of re-running the whole prefix,
and the cross-attention keys of the inputs are projected once per sentence, not once per step.

Memory (what the decoder attends to) is ``(n, M, dim)`` with ``memory_keep`` ``(n, M)`` marking real positions:
the hidden layers' vector as one position, then each text input's token states.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def split(self, x: torch.Tensor) -> torch.Tensor:  # (n, L, dim) → (n, heads, L, dim / heads)
        n, length, dim = x.shape
        return x.view(n, length, self.heads, dim // self.heads).transpose(1, 2)

    def keys(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.key_value(x).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def attend(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
               causal: bool = False) -> torch.Tensor:
        q = self.split(self.query(x))
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        n, heads, length, part = h.shape
        return self.out(h.transpose(1, 2).reshape(n, length, heads * part))


class DecoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.self_attention = Attention(dim, heads, dropout)
        self.cross_attention = Attention(dim, heads, dropout)
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cross: tuple[torch.Tensor, torch.Tensor], cross_mask: torch.Tensor,
                cache: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Teacher forcing (``cache`` None: the whole sequence, causally masked) or one step appended to ``cache``."""
        h = self.norm1(x)
        k, v = self.self_attention.keys(h)
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        x = x + self.dropout(self.self_attention.attend(h, k, v, causal=cache is None))
        x = x + self.dropout(self.cross_attention.attend(self.norm2(x), *cross, mask=cross_mask))
        return x + self.dropout(self.ff(self.norm3(x)))


class TextDecoder(nn.Module):
    """Token + position embeddings → decoder layers → a projection tied to the token embeddings."""

    def __init__(self, vocabulary: int, dim: int, layers: int, heads: int, ff_dim: int, max_length: int,
                 dropout: float) -> None:
        super().__init__()
        self.dim, self.max_length = dim, max_length
        self.embedding = nn.Embedding(vocabulary, dim, padding_idx=PAD)
        self.positions = nn.Embedding(max_length + 1, dim)
        self.layers = nn.ModuleList(DecoderLayer(dim, heads, ff_dim, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.embedding.weight, std=dim ** -0.5)

    def cross(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [layer.cross_attention.keys(memory) for layer in self.layers]

    def logits(self, ids: torch.Tensor, start: int, cross: list[tuple[torch.Tensor, torch.Tensor]],
               cross_mask: torch.Tensor, caches: list[dict[str, torch.Tensor]] | None = None) -> torch.Tensor:
        positions = torch.arange(start, start + ids.shape[1], device=ids.device)
        x = self.dropout(self.embedding(ids) * math.sqrt(self.dim) + self.positions(positions))
        for i, layer in enumerate(self.layers):
            x = layer(x, cross[i], cross_mask, None if caches is None else caches[i])
        return self.norm(x) @ self.embedding.weight.t()

    def forward(self, memory: torch.Tensor, memory_keep: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, T, vocabulary)`` for every next token of ``target`` = [BOS] tokens [EOS] (teacher forcing)."""
        ids = target[:, :-1]
        return self.logits(ids, 0, self.cross(memory), _mask(memory_keep))

    def generate(self, memory: torch.Tensor, memory_keep: torch.Tensor, max_length: int, beam_size: int = 1,
                 length_penalty: float = 0.6) -> torch.Tensor:
        """Token ids ``(n, max_length)`` (no [BOS], padded with [PAD] after [EOS]) by greedy or beam search."""
        max_length = min(max_length, self.max_length)
        if beam_size > 1:
            return self._beam(memory, memory_keep, max_length, beam_size, length_penalty)
        n = memory.shape[0]
        cross, mask = self.cross(memory), _mask(memory_keep)
        caches: list[dict[str, torch.Tensor]] = [{} for _ in self.layers]
        out = torch.full((n, max_length), PAD, dtype=torch.long, device=memory.device)
        token = torch.full((n, 1), BOS, dtype=torch.long, device=memory.device)
        done = torch.zeros(n, dtype=torch.bool, device=memory.device)
        for step in range(max_length):
            token = self.logits(token, step, cross, mask, caches)[:, -1].argmax(-1, keepdim=True)
            out[:, step] = token.squeeze(1).masked_fill(done, PAD)
            done |= token.squeeze(1) == EOS
            if bool(done.all()):
                break
        return out

    def _beam(self, memory: torch.Tensor, memory_keep: torch.Tensor, max_length: int, k: int,
              length_penalty: float) -> torch.Tensor:
        """Batched beam search: the ``n × k`` hypotheses run as one batch; finished ones only extend with [PAD].

        Scores are summed log-probabilities divided by the GNMT length penalty ((5 + length) / 6) ** alpha."""
        n, device = memory.shape[0], memory.device
        memory = memory.repeat_interleave(k, 0)
        cross, mask = self.cross(memory), _mask(memory_keep.repeat_interleave(k, 0))
        caches: list[dict[str, torch.Tensor]] = [{} for _ in self.layers]
        tokens = torch.full((n * k, max_length), PAD, dtype=torch.long, device=device)
        scores = torch.zeros(n, k, device=device)
        scores[:, 1:] = -math.inf  # all beams start identical: keep one until the first step diverges them
        lengths = torch.zeros(n * k, device=device)
        done = torch.zeros(n * k, dtype=torch.bool, device=device)
        token = torch.full((n * k, 1), BOS, dtype=torch.long, device=device)
        rows = torch.arange(n, device=device).unsqueeze(1) * k
        for step in range(max_length):
            logp = F.log_softmax(self.logits(token, step, cross, mask, caches)[:, -1].float(), -1)
            vocabulary = logp.shape[-1]
            # A finished hypothesis keeps its score: its only continuation is [PAD] at no cost.
            logp = torch.where(done.unsqueeze(1), torch.full_like(logp, -math.inf), logp)
            logp[:, PAD] = torch.where(done, 0.0, -math.inf)
            total = (scores.view(-1, 1) + logp).view(n, k * vocabulary)
            new_lengths = (lengths.view(n, k, 1) + (~done).view(n, k, 1).float()).expand(n, k, vocabulary)
            penalty = ((5.0 + new_lengths.reshape(n, -1)) / 6.0) ** length_penalty
            _, best = (total / penalty).topk(k, dim=1)
            source = (rows + best // vocabulary).view(-1)
            token = (best % vocabulary).view(-1, 1)
            scores = total.gather(1, best)
            lengths, done, tokens = lengths[source] + (~done[source]).float(), done[source], tokens[source]
            tokens[:, step] = token.squeeze(1)
            done = done | (token.squeeze(1) == EOS)
            for cache in caches:
                cache["k"], cache["v"] = cache["k"][source], cache["v"][source]
            if bool(done.all()):
                break
        final = scores / ((5.0 + lengths.view(n, k)) / 6.0) ** length_penalty
        best = rows.squeeze(1) + final.argmax(1)
        return tokens[best]


def _mask(keep: torch.Tensor) -> torch.Tensor:
    """A boolean attention mask (n, 1, 1, M) from the real-position mask (n, M)."""
    return keep[:, None, None, :]
