"""Free text (reviews, messages, intents): a subword tokenizer trained on the training split, and a text encoder.

The fitted state is the Hugging Face ``tokenizers`` tokenizer as JSON (``Tokenizer.to_str()``), so it lives in
``lamina.json`` like every other state. ``transform`` encodes the column once and returns int64 ids ``(n, L)``,
padded with ``[PAD]`` (id 0) to the longest row of that split, capped at ``max_length`` — each split is padded on
its own, so short texts never pay for the longest text of another split. Every encoder ignores padding (masked mean,
masked max-pool, key padding mask), so a row's vector does not depend on how far it was padded.

The ``hashed`` encoder (``lamina.inputs.text_hashing``) needs no tokenizer: ids of hashed word and character n-grams,
int32, the text cut to the training split's 99th-percentile length.

Every encoder is ``pool(keep, embed(ids))``: ``lamina explain`` attributes at the embedding output (per token).
In training, batches of similar lengths (``lamina.buckets``) are trimmed to their longest row.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator
from torch import nn

from lamina.errors import LaminaError
from lamina.inputs import text_hashing, text_pretrained
from lamina.inputs.base import InputType, Options
from lamina.inputs.text_classical import TfidfFeaturizer
from lamina.inputs.text_encoders import PAD, BagEncoder, CNNEncoder, TransformerEncoder

log = logging.getLogger("lamina")

UNK, CLS = 1, 2  # after PAD (0)
SPECIAL = ["[PAD]", "[UNK]", "[CLS]"]


class TextOptions(Options):
    tokenizer: Literal["bpe", "wordpiece"] = Field("bpe", description="subword model trained on the training split")
    vocab_size: int = Field(8000, ge=16, le=1_000_000)
    lowercase: bool = True
    max_length: int = Field(256, ge=1, le=100_000, description="tokens kept per row; longer rows are truncated")
    truncation: Literal["right", "left"] = Field("right", description="right: keep the start; left: keep the end")
    encoder: Literal["hashed", "bag", "cnn", "transformer", "minilm"] = Field(
        "cnn", description="hashed: mean of hashed word and character n-gram embeddings (fastText-style; what "
        "`lamina init` writes); minilm: the pretrained all-MiniLM-L6-v2 sentence encoder and its own tokenizer "
        "(pip install 'lamina[pretrained]'); tokenizer, vocab_size, lowercase and the size options do not apply")
    embedding_dim: int | None = Field(None, ge=1, description="default: 128; hashed: 64 (a table of buckets rows)")
    buckets: int = Field(2**17, ge=16, le=2**24, description="hashed: rows of the n-gram embedding table")
    word_ngrams: int = Field(2, ge=1, le=5, description="hashed: word n-grams of 1 up to this many words")
    char_ngrams: list[int] | None = Field([2, 5], min_length=2, max_length=2,
                                          description="hashed: [shortest, longest] character n-grams; null: none")
    weighting: Literal["tfidf", "mean"] = Field(
        "tfidf", description="hashed: tfidf: the n-gram rows weighed by their idf in the training split, words and "
        "characters each L2-normalised (TF-IDF's weighting); mean: their plain mean")
    kernel_sizes: list[int] = Field([3, 5], min_length=1, description="cnn: one convolution per kernel size")
    channels: int = Field(128, ge=1, description="cnn: filters per kernel size")
    layers: int = Field(2, ge=1, le=48, description="transformer blocks")
    heads: int = Field(4, ge=1)
    ff_dim: int | None = Field(None, ge=1, description="transformer feed-forward width; default 2 × embedding_dim")
    positions: Literal["learned", "sinusoidal"] = "learned"
    pooling: Literal["mean", "cls"] = Field("mean", description="transformer: masked mean of tokens, or [CLS]")
    dropout: float = Field(0.1, ge=0, lt=1)
    fine_tune: bool = Field(False, description="minilm: train its weights with the network (slow; choose a small "
                            "trainer.learning_rate, e.g. 2e-5 to 5e-5); false: fixed sentence vectors computed once")

    @model_validator(mode="after")
    def _check(self) -> TextOptions:
        if self.encoder == "transformer" and self.dim % self.heads:
            raise ValueError(f"embedding_dim ({self.dim}) must be a multiple of heads ({self.heads})")
        if self.char_ngrams and not 1 <= self.char_ngrams[0] <= self.char_ngrams[1] <= 10:
            raise ValueError(f"char_ngrams {self.char_ngrams}: want [shortest, longest] with 1 <= shortest <= "
                             "longest <= 10")
        if self.fine_tune and self.encoder != "minilm":
            raise ValueError("fine_tune applies to the pretrained encoder only (encoder: minilm)")
        if self.encoder == "minilm" and self.max_length > text_pretrained.MAX_LENGTH:
            raise ValueError(f"max_length {self.max_length}: the MiniLM encoder takes at most "
                             f"{text_pretrained.MAX_LENGTH} tokens")
        return self

    @property
    def dim(self) -> int:
        return self.embedding_dim or (64 if self.encoder == "hashed" else 128)


def build_tokenizer(kind: str, vocab_size: int, lowercase: bool, texts: list[str]):  # -> tokenizers.Tokenizer
    try:
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    except ModuleNotFoundError:
        raise LaminaError("the text type needs Hugging Face tokenizers: pip install tokenizers") from None
    if kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, show_progress=False)
    else:
        tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, show_progress=False)
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tokenizer


def training_texts(values: pd.Series, what: str) -> list[str]:
    """The non-blank texts of a training split; ``what`` names the column in the error when there are none."""
    texts = [t for t in (as_text(v) for v in values) if t.strip()]
    if not texts:
        raise LaminaError(f"{what}: every text in the training split is empty or missing")
    return texts


def as_text(value: object) -> str:
    """A cell as text: missing → '', bytes decoded as UTF-8 with replacement, anything else via str()."""
    if value is None or (not isinstance(value, (str, bytes, list, tuple, np.ndarray)) and pd.isna(value)):
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else str(value)


class TextInput(InputType):
    kind = "text"

    @classmethod
    def tune_space(cls) -> dict[str, dict[str, Any]]:
        # The pretrained encoder is left out: a user who wants it in the race adds it to the choices.
        return {"encoder": {"choices": ["hashed", "bag", "cnn"]}, "embedding_dim": {"choices": [32, 64, 128, 256]},
                "dropout": {"low": 0.0, "high": 0.4}}
    Options = TextOptions

    _tokenizer = None
    _hashers = None
    _minilm: text_pretrained.Installed | None = None  # the pretrained package as this column uses it (encoder: minilm)

    def _installed(self) -> text_pretrained.Installed:
        if self._minilm is None:
            self._minilm = text_pretrained.Installed()
        return self._minilm

    def _cls(self) -> bool:
        return self.options.encoder == "transformer" and self.options.pooling == "cls"

    def tokenizer(self):  # -> tokenizers.Tokenizer
        if self._tokenizer is None and self.options.encoder == "minilm":
            self._tokenizer = text_pretrained.column_tokenizer(self._installed(), self.state, self.options.truncation)
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_str(self.state["tokenizer"])
        return self._tokenizer

    def fit(self, values: pd.Series) -> None:
        texts = training_texts(values, f"column '{self.name}'")
        o = self.options
        if o.encoder == "hashed":  # hashing learns nothing; the length cap and the idf come from the split
            self.state = {"max_chars": text_hashing.char_cap(texts), "vocab_size": o.buckets + 1}
            if o.weighting == "tfidf":
                flat, starts = self._hashed_ids(pd.Series(texts), parts=True, quiet=True)
                self.state["idf"] = text_hashing.fit_idf(flat, starts, 2 * o.buckets + 1)
            return
        if o.encoder == "minilm":  # the pretrained model's own tokenizer: nothing to learn from the split
            self.state, self._tokenizer = text_pretrained.fitted_state(self._installed(), o.fine_tune, o.max_length), None
            return
        tokenizer = build_tokenizer(o.tokenizer, o.vocab_size, o.lowercase, texts)
        self._tokenizer = tokenizer
        self.state = {"tokenizer": tokenizer.to_str(), "vocab_size": int(tokenizer.get_vocab_size())}

    def encode(self, values: pd.Series) -> list[list[int]]:
        """Token ids per row, before truncation and padding (no special tokens)."""
        texts = [as_text(v) for v in values]
        return [e.ids for e in self.tokenizer().encode_batch(texts, add_special_tokens=False)]

    def tokens(self, ids: torch.Tensor) -> list[list[str]]:
        """The token strings of transformed rows, padding left out (for explanations); hashed n-grams cannot be
        turned back into text, so they read ``#bucket``."""
        if self.options.encoder == "hashed":
            return [[text_hashing.ngram_name(int(i), self.options.buckets) for i in row if int(i) != PAD]
                    for row in ids]
        tokenizer = self.tokenizer()
        return [[tokenizer.id_to_token(int(i)) for i in row if int(i) != PAD] for row in ids]

    def transform(self, values: pd.Series) -> torch.Tensor:
        if self.options.encoder == "minilm":
            return text_pretrained.transform(self._installed(), self.name, self.state, self.options.fine_tune, self.options.truncation,
                                             [as_text(v) for v in values], self.tokenizer())
        if self.options.encoder == "hashed":
            return self._hashed(values)
        rows = self.encode(values)
        cls = self._cls()
        room = self.options.max_length - int(cls)
        if room < 1:
            raise LaminaError(f"column '{self.name}': max_length must leave room for [CLS] and one token")
        truncated = sum(len(r) > room for r in rows)
        if truncated:
            log.warning("column '%s': %d of %d text(s) longer than %d tokens truncated (%s kept)", self.name,
                        truncated, len(rows), room, "start" if self.options.truncation == "right" else "end")
        empty = sum(not r for r in rows)
        if empty:
            log.info("column '%s': %d empty or missing text(s) encoded as empty sequences", self.name, empty)
        keep = (lambda r: r[:room]) if self.options.truncation == "right" else (lambda r: r[-room:])
        rows = [([CLS] if cls else []) + keep(r) for r in rows]
        length = max(1, max((len(r) for r in rows), default=1))
        ids = np.full((len(rows), length), PAD, dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
        return torch.from_numpy(ids)

    def _hashed(self, values: pd.Series) -> torch.Tensor:
        return text_hashing.padded(*self._hashed_ids(values, "idf" in self.state))

    def _hashed_ids(self, values: pd.Series, parts: bool, quiet: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The hashed n-gram ids (CSR) of texts cut at the length cap, logged unless ``quiet``; ``parts``: the
        character n-grams' ids offset (a model saved before ``weighting`` has no idf: its ids share one range)."""
        o = self.options
        texts, cut = text_hashing.cut((as_text(v) for v in values), int(self.state["max_chars"]), o.truncation)
        if cut and not quiet:
            log.info("column '%s': %d of %d text(s) longer than %d characters cut (the training split's "
                     "%gth percentile; %s kept)", self.name, cut, len(texts), self.state["max_chars"],
                     text_hashing.PERCENTILE, "start" if o.truncation == "right" else "end")
        if self._hashers is None:
            self._hashers = text_hashing.vectorizers(o.buckets, o.word_ngrams, o.char_ngrams, o.lowercase)
        return text_hashing.ngram_ids(texts, self._hashers, parts)

    @property
    def width(self) -> int:
        return self.encoder_width()

    def encoder_width(self) -> int:
        o = self.options
        if o.encoder == "minilm":
            return int(self.state.get("dim", 384))
        if o.encoder == "cnn":
            return o.channels * len(o.kernel_sizes)
        return o.dim

    def encoder(self) -> nn.Module:
        o = self.options
        if o.encoder == "minilm":
            return text_pretrained.encoder(self._installed(), self.state, o.fine_tune, o.dropout)
        vocabulary = int(self.state["vocab_size"])
        if o.encoder == "hashed":
            idf = text_hashing.idf_table(self.state["idf"]) if "idf" in self.state else None
            return text_hashing.HashedBagEncoder(o.buckets, o.dim, o.dropout, idf)
        if o.encoder == "bag":
            return BagEncoder(vocabulary, o.dim, o.dropout)
        if o.encoder == "cnn":
            return CNNEncoder(vocabulary, o.dim, o.kernel_sizes, o.channels, o.dropout)
        return TransformerEncoder(vocabulary, o.dim, o.max_length, o.layers, o.heads,
                                  o.ff_dim or 2 * o.dim, o.positions, o.pooling, o.dropout)

    # --- faces: TF-IDF for compare, tokens for explain ------------------------------------------------------------

    free_text = True

    @property
    def explain_rows(self) -> int:  # type: ignore[override]
        # A hashed text is ~1,000 n-gram positions a row: 300 rows × 64 integration steps made report.html take
        # longer than the training; 40 rows still show which n-grams a model reads.
        return 40 if self.options.encoder == "hashed" else 300
    baseline_note = "texts as [PAD] embeddings (frozen pretrained text encoders: the zero sentence vector)"

    def classical(self) -> TfidfFeaturizer:
        return TfidfFeaturizer(self, as_text)

    def attribution(self, encoder: nn.Module) -> str:
        # A frozen pretrained encoder (MiniLM) has only a precomputed sentence vector: no token to vary.
        return "tokens" if hasattr(encoder, "embed") else "encoded"
