"""Hashed word and character n-grams (fastText-style): the text type's ``hashed`` encoder.

A text becomes the set of its word 1..``word_ngrams``-grams and its character ``char_ngrams`` n-grams (inside word
boundaries, like TF-IDF's ``char_wb``), each hashed (MurmurHash3, scikit-learn's ``HashingVectorizer``) into one of
``buckets`` rows of an embedding table; an unseen word still shares its character n-grams with seen ones.

``weighting: tfidf`` (the default) pools the rows like TF-IDF weighs its columns: each n-gram weighs its inverse
document frequency in the training split (``state["idf"]``), and the word part and the character part are each
L2-normalised, as ``lamina compare``'s TF-IDF normalises its two vectorizers. A plain mean drowned a text's twenty
words in its few hundred character n-grams and weighed "the" like "kernel" (fortunes, 40 topics: 0.45 accuracy
against 0.52, docs/benchmarks.md). ``weighting: mean`` (and every model saved before it) averages the rows.

Ids are bucket + 1 (0 is padding), one per distinct n-gram, ascending, stored as int32: a review of 400 characters
gives about 800 of them. With ``tfidf`` a character n-gram's id is offset by ``buckets`` (so the encoder can tell the
two parts apart) and reads the same table row as the word n-gram of that bucket. Texts are cut to the training
split's 99th-percentile length in characters (``state["max_chars"]``, at most ``MAX_CHARS``), so one very long text
cannot widen a whole split's tensor.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

PAD = 0
MAX_CHARS = 20_000  # the most characters of one text that are hashed, whatever the percentile says
PERCENTILE = 99.0
HOSTNAME = re.compile(r"^(?=.{4,253}$)[a-z0-9_-]+(\.[a-z0-9_-]+)*\.([a-z][a-z0-9-]{1,62})$", re.IGNORECASE)
# names ending like files (scan_001.dcm, notes.txt) are file names, IDs, not hosts
FILE_SUFFIXES = frozenset("bin bmp csv dat dcm doc docx exe flac gif gz html jpeg jpg json log mp3 mp4 nii npy ogg "
                          "parquet pcap pcapng pdf png tar tif tiff tsv txt wav webp xls xlsx xml yaml yml zip".split())


def _hostname(value: str) -> bool:
    match = HOSTNAME.match(value)
    return bool(match) and match.group(2).lower() not in FILE_SUFFIXES


def looks_like_hostnames(present: pd.Series) -> bool:
    """Domain names (``kq0qw6o2siwq.org``, ``mycarticker.de``): their characters carry the signal (generated
    malware domains against registered ones), so a column of them is text for character n-grams, not an ID."""
    sample = present.iloc[:2000]
    if not all(isinstance(v, str) for v in sample):
        return False
    return float(sample.map(_hostname).mean()) >= 0.95
# A weighted bag stores its rows RATE times smaller and scales the pooled sum back up: Adam moves a stored value by
# about the learning rate a step, so the rows learn RATE times faster than the heads, as fastText's embeddings learn
# at a high rate. At init's 1e-3 for the whole network, within init's 5-minute budget on a busy machine, fortunes
# reached 0.34 accuracy instead of 0.51 (docs/benchmarks.md).
RATE = 10.0
IDF_STEP = 16  # idf is stored as uint8 in 1/16 steps (idf lies in [1, 1 + ln(rows)]: 15.9 even at 8 million rows)


def vectorizers(buckets: int, word_ngrams: int, char_ngrams: list[int] | None, lowercase: bool) -> list:
    from sklearn.feature_extraction.text import HashingVectorizer

    common = {"n_features": buckets, "alternate_sign": False, "norm": None, "lowercase": lowercase,
              "dtype": np.float32}
    out = [HashingVectorizer(ngram_range=(1, word_ngrams), token_pattern=r"(?u)\b\w+\b", **common)]
    if char_ngrams:
        out.append(HashingVectorizer(analyzer="char_wb", ngram_range=(char_ngrams[0], char_ngrams[1]), **common))
    return out


def char_cap(texts: list[str]) -> int:
    """The training split's ``PERCENTILE`` text length in characters, within [1, MAX_CHARS]."""
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    return int(min(max(np.ceil(np.percentile(lengths, PERCENTILE)), 1), MAX_CHARS)) if len(lengths) else MAX_CHARS


def cut(texts: Iterable[str], cap: int, truncation: str) -> tuple[list[str], int]:
    """Texts cut to ``cap`` characters (``right``: the start kept, ``left``: the end), and how many were cut."""
    texts = list(texts)
    long = sum(len(t) > cap for t in texts)
    if long:
        texts = [t[:cap] if truncation == "right" else t[-cap:] for t in texts]
    return texts, long


def ngram_name(id_: int, buckets: int) -> str:
    """An id as explanations show it (hashed n-grams cannot be turned back into text): ``#bucket``, ``#c``
    before a character n-gram's bucket."""
    return f"#{id_ - 1}" if id_ <= buckets else f"#c{id_ - 1 - buckets}"


def ngram_ids(texts: list[str], hashers: list, parts: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Flat ascending bucket ids + 1 of every text's distinct n-grams, and each text's start in them (CSR); with
    ``parts`` the character n-grams' ids come after the words', offset by the buckets."""
    from scipy.sparse import hstack

    matrices = [h.transform(texts) for h in hashers]
    matrix = hstack(matrices) if parts else sum(matrices[1:], matrices[0])
    matrix = matrix.tocsr()
    matrix.sort_indices()
    return matrix.indices.astype(np.int32) + 1, matrix.indptr.astype(np.int64)


def padded(flat: np.ndarray, starts: np.ndarray) -> torch.Tensor:
    """``(n, longest)`` int32 ids, padded with 0 after each row's ids."""
    counts = np.diff(starts)
    ids = np.zeros((len(counts), max(int(counts.max(initial=0)), 1)), dtype=np.int32)
    rows = np.repeat(np.arange(len(counts)), counts)
    ids[rows, np.arange(len(flat)) - np.repeat(starts[:-1], counts)] = flat
    return torch.from_numpy(ids)


def fit_idf(flat: np.ndarray, starts: np.ndarray, size: int) -> str:
    """Smoothed idf, ``ln((1 + n) / (1 + df)) + 1`` as scikit-learn's TF-IDF has it, of each of ``size`` ids (0:
    padding) over the training texts' ids, as base64 of uint8 in ``1 / IDF_STEP`` steps: 2^18 ids take 350 KB of
    lamina.json instead of 3 MB of floats."""
    df = np.bincount(flat, minlength=size)[:size]
    idf = np.log((1.0 + (len(starts) - 1)) / (1.0 + df)) + 1.0
    return base64.b64encode(np.clip(np.rint(idf * IDF_STEP), 0, 255).astype(np.uint8).tobytes()).decode("ascii")


def idf_table(encoded: str) -> torch.Tensor:
    """``fit_idf``'s string as float32 weights, padding's set to 0."""
    table = torch.from_numpy(np.frombuffer(base64.b64decode(encoded), dtype=np.uint8).astype(np.float32)) / IDF_STEP
    table[PAD] = 0.0
    return table


def exporting() -> bool:
    return bool(torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting())


class HashedBagEncoder(nn.Module):
    """The n-gram embeddings pooled (``idf`` given: the TF-IDF-weighted sum, each part L2-normalised; else the
    mean, padding left out), then dropout.

    Training and prediction pool with ``embedding_bag`` over the non-padding ids, which never builds the ``(n, L,
    dim)`` tensor of gathered rows; ``embed``/``pool`` (used by explanations and by the ONNX export) build it and
    give the same vector: ``embed`` scales each row by its weight, so ``pool`` sums what it is given."""

    def __init__(self, buckets: int, dim: int, dropout: float, idf: torch.Tensor | None = None) -> None:
        super().__init__()
        self.buckets = buckets
        self.embedding = nn.Embedding(buckets + 1, dim, padding_idx=PAD)
        self.rate = RATE if idf is not None else 1.0  # a model saved with mean pooling keeps its rows as they were
        nn.init.normal_(self.embedding.weight, 0.0, 0.1 / self.rate)  # rows are pooled over hundreds of n-grams
        with torch.no_grad():
            self.embedding.weight[PAD].zero_()
        # Fitted state (lamina.json), not a weight: rebuilt from the state, so not saved with the weights.
        self.register_buffer("idf", idf, persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = dim

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """The table row of each id: a character n-gram's id (above ``buckets``) reads its bucket's row."""
        ids = ids.long()
        return torch.where(ids > self.buckets, ids - self.buckets, ids) if self.idf is not None else ids

    def weights(self, ids: torch.Tensor) -> torch.Tensor:
        """``(n, L)`` pooling weights: idf over the L2 norm of the row's part (words, characters), times ``rate``;
        0 for padding."""
        w = self.idf[ids.long()]
        chars = ids > self.buckets
        norm = lambda part: (w * w * part).sum(1, keepdim=True).sqrt().clamp(min=1e-12)  # noqa: E731
        return self.rate * w / torch.where(chars, norm(chars), norm(~chars))

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        embedded = self.embedding(self.rows(ids))
        return embedded if self.idf is None else embedded * self.weights(ids).unsqueeze(-1)

    def pool(self, keep: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        w = keep.unsqueeze(-1).to(embedded.dtype)
        total = (embedded * w).sum(1)
        return self.dropout(total if self.idf is not None else total / w.sum(1).clamp(min=1.0))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if exporting():
            return self.pool(ids != PAD, self.embed(ids))
        keep = ids != PAD
        counts = keep.sum(1)
        offsets = torch.cumsum(counts, 0) - counts
        flat = ids[keep]  # row-major: each row's ids in order, rows one after another
        rows, offsets = self.rows(flat), offsets.to(torch.int64)
        if self.idf is None:
            return self.dropout(F.embedding_bag(rows, self.embedding.weight, offsets, mode="mean"))
        weights = self.weights(ids)[keep]
        return self.dropout(F.embedding_bag(rows, self.embedding.weight, offsets, mode="sum",
                                            per_sample_weights=weights))
