"""Text targets (translation, rewriting): a byte-level BPE tokenizer of the targets and a transformer decoder.

The head sees the hidden layers' vector and every text input's token states (cross-attention), so the same input
layer and hidden layers feed it as they feed any other head. What the head returns depends on the call:

* training (teacher forcing): next-token logits ``(n, T, vocabulary)``, for the label-smoothed cross-entropy;
* evaluation with the target given (the validation loss each epoch): per-token negative log-likelihood ``(n, T)``;
* prediction (no target): generated token ids ``(n, max_length)`` by greedy or beam search.

Byte-level BPE has no unknown token: a character never seen in the training targets is still representable (as its
bytes), so an unseen accent in a test sentence costs a few tokens, never an error.

>>> # config.yaml: outputs: [{name: french, type: text, options: {beam_size: 4}}]
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator
from torch import nn
from torch.nn import functional as F

from lamina.errors import LaminaError
from lamina.inputs.base import Options
from lamina.inputs.text import as_text, training_texts
from lamina.outputs.base import OutputType
from lamina.outputs.text_decoder import BOS, EOS, PAD, TextDecoder

log = logging.getLogger("lamina")

SPECIAL = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
GENERATE_CHUNK = 64  # sentences generated together


class TextOutputOptions(Options):
    vocab_size: int = Field(4000, ge=64, le=1_000_000, description="byte-level BPE vocabulary of the targets")
    lowercase: bool = Field(False, description="lowercase targets before training (and so in every prediction)")
    max_length: int = Field(64, ge=2, le=4096, description="target tokens kept in training and generated at most")
    dim: int = Field(256, ge=8, description="decoder width")
    layers: int = Field(2, ge=1, le=48)
    heads: int = Field(4, ge=1)
    ff_dim: int | None = Field(None, ge=1, description="feed-forward width; default 4 × dim")
    dropout: float = Field(0.1, ge=0, lt=1)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    beam_size: int = Field(4, ge=1, le=64, description="1: greedy search")
    length_penalty: float = Field(0.6, ge=0, description="GNMT alpha: higher favours longer outputs")
    loss_weight: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> TextOutputOptions:
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")
        return self


def build_target_tokenizer(vocab_size: int, lowercase: bool, texts: list[str]):  # -> tokenizers.Tokenizer
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else []))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tokenizer


class SequenceLoss(nn.Module):
    """Label-smoothed cross-entropy over the real target tokens; on per-token NLL (evaluation) their mean."""

    def __init__(self, label_smoothing: float) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labels = target[:, 1:1 + raw.shape[1]]
        if raw.dim() == 2:  # per-token NLL from evaluation: PAD positions are 0
            return raw.sum() / (labels != PAD).sum().clamp(min=1)
        return F.cross_entropy(raw.reshape(-1, raw.shape[-1]).float(), labels.reshape(-1), ignore_index=PAD,
                               label_smoothing=self.label_smoothing)


class TextHead(nn.Module):
    """Projects the hidden vector and the text inputs' token states to the decoder's width, then decodes."""

    def __init__(self, hidden_dim: int, state_dims: list[int], options: TextOutputOptions, vocabulary: int) -> None:
        super().__init__()
        o = options
        self.from_hidden = nn.Linear(hidden_dim, o.dim)
        self.from_states = nn.ModuleList(nn.Linear(d, o.dim) for d in state_dims)
        self.decoder = TextDecoder(vocabulary, o.dim, o.layers, o.heads, o.ff_dim or 4 * o.dim, o.max_length + 1,
                                   o.dropout)
        self.max_length, self.beam_size, self.length_penalty = o.max_length + 1, o.beam_size, o.length_penalty

    def memory(self, h: torch.Tensor, states: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [self.from_hidden(h).unsqueeze(1)]
        keeps = [torch.ones(h.shape[0], 1, dtype=torch.bool, device=h.device)]
        for project, (x, keep) in zip(self.from_states, states):
            parts.append(project(x))
            keeps.append(keep)
        return torch.cat(parts, 1), torch.cat(keeps, 1)

    def forward(self, h: torch.Tensor, states: list[tuple[torch.Tensor, torch.Tensor]],
                target: torch.Tensor | None = None) -> torch.Tensor:
        memory, keep = self.memory(h, states)
        if target is None:
            # In chunks: a beam's key/value cache is reordered every step, and small caches stay in the CPU's cache.
            return torch.cat([self.decoder.generate(m, k, self.max_length, self.beam_size, self.length_penalty)
                              for m, k in zip(memory.split(GENERATE_CHUNK), keep.split(GENERATE_CHUNK))])
        if self.training:
            # Only as wide as this batch's longest target: the split is padded to its longest.
            target = target[:, : int((target != PAD).sum(1).max())]
            return self.decoder(memory, keep, target)
        logits = self.decoder(memory, keep, target)
        labels = target[:, 1:]
        nll = -F.log_softmax(logits.float(), -1).gather(2, labels.unsqueeze(2)).squeeze(2)
        return nll.masked_fill(labels == PAD, 0.0)


class TextOutput(OutputType):
    kind = "text"
    Options = TextOutputOptions
    sequence = True
    primary_metric = "chrf"
    higher_is_better = True
    metric_names = ("exact_match", "bleu", "chrf")

    _tokenizer = None

    def tokenizer(self):  # -> tokenizers.Tokenizer
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_str(self.state["tokenizer"])
        return self._tokenizer

    def fit(self, values: pd.Series) -> None:
        texts = training_texts(values, f"target '{self.name}'")
        tokenizer = build_target_tokenizer(self.options.vocab_size, self.options.lowercase, texts)
        self._tokenizer = tokenizer
        self.state = {"tokenizer": tokenizer.to_str(), "vocab_size": int(tokenizer.get_vocab_size())}

    def transform(self, values: pd.Series) -> torch.Tensor:
        """[BOS] tokens [EOS] per row, padded with [PAD] to the split's longest; longer targets are truncated."""
        encoded = self.tokenizer().encode_batch([as_text(v) for v in values], add_special_tokens=False)
        room = self.options.max_length
        rows = [e.ids for e in encoded]
        truncated = sum(len(r) > room for r in rows)
        if truncated:
            log.warning("target '%s': %d of %d text(s) longer than %d tokens truncated in training (raise "
                        "max_length to learn them whole)", self.name, truncated, len(rows), room)
        rows = [[BOS, *r[:room], EOS] for r in rows]
        ids = np.full((len(rows), max(len(r) for r in rows)), PAD, dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
        return torch.from_numpy(ids)

    def head(self, in_dim: int, state_dims: list[int] | None = None) -> nn.Module:
        return TextHead(in_dim, state_dims or [], self.options, int(self.state["vocab_size"]))

    def loss(self) -> nn.Module:
        return SequenceLoss(self.options.label_smoothing)

    def texts(self, raw: np.ndarray) -> list[str]:
        """Generated ids → strings: everything up to the first [EOS], special tokens dropped."""
        ids = np.asarray(raw).astype(np.int64)
        rows = []
        for row in ids:
            end = np.flatnonzero(row == EOS)
            rows.append([int(i) for i in row[: end[0] if end.size else len(row)] if i > EOS])
        return [t.strip() for t in self.tokenizer().decode_batch(rows, skip_special_tokens=True)]

    def decode(self, raw: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({self.name: self.texts(raw)})

    def metrics(self, values: pd.Series, raw: np.ndarray) -> dict[str, Any]:
        if raw.ndim != 2 or not np.all(np.mod(raw, 1) == 0):
            raise LaminaError(f"target '{self.name}': metrics need generated token ids, not teacher-forced scores")
        return self.score_texts(values, self.texts(raw))

    def score_texts(self, values: pd.Series, predicted: list[str]) -> dict[str, Any]:
        """Exact match, BLEU and chrF of predicted strings against raw targets (also for classical counterparts)."""
        import sacrebleu

        truth = [as_text(v).strip() for v in values]
        if self.options.lowercase:
            truth = [t.lower() for t in truth]
        return {
            "exact_match": float(np.mean([p == t for p, t in zip(predicted, truth)])) if truth else float("nan"),
            "bleu": float(sacrebleu.corpus_bleu(predicted, [truth]).score),
            "chrf": float(sacrebleu.corpus_chrf(predicted, [truth]).score),
        }

    # --- faces: its own classical counterparts, generated texts in the report -----------------------------------

    def classical_counterparts(self, inputs: list[Any], split: dict[str, pd.DataFrame]) -> list[dict[str, Any]] | None:
        from lamina.outputs.text_faces import counterparts

        return counterparts(self, inputs, split)

    def report_section(self, inputs: list[Any], test: pd.DataFrame, raw: np.ndarray) -> str | None:
        from lamina.outputs.text_faces import generated_table
        from lamina.pages import heading

        return heading(self.name) + generated_table(self, inputs, test, raw)

