"""Hashed word and character n-grams (fastText-style): the text type's ``hashed`` encoder.

A text becomes the set of its word 1..``word_ngrams``-grams and its character ``char_ngrams`` n-grams (inside word
boundaries, like TF-IDF's ``char_wb``), each hashed (MurmurHash3, scikit-learn's ``HashingVectorizer``) into one of
``buckets`` rows of an embedding table. The encoder is the mean of those rows: an unseen word still shares its
character n-grams with seen ones, and nothing but the options and a length cap is fitted, so the transform is the
same at training, prediction and serving time wherever scikit-learn's hash is.

Ids are bucket + 1 (0 is padding), one per distinct n-gram, ascending, stored as int32: a review of 400 characters
gives about 800 of them. Texts are cut to the training split's 99th-percentile length in characters (``state
["max_chars"]``, at most ``MAX_CHARS``), so one very long text cannot widen a whole split's tensor.
"""

from __future__ import annotations

import re

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


def ngram_ids(texts: list[str], hashers: list) -> tuple[np.ndarray, np.ndarray]:
    """Flat ascending bucket ids + 1 of every text's distinct n-grams, and each text's start in them (CSR)."""
    matrix = hashers[0].transform(texts)
    for h in hashers[1:]:
        matrix = matrix + h.transform(texts)
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


def exporting() -> bool:
    return bool(torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting())


class HashedBagEncoder(nn.Module):
    """Mean of the n-gram embeddings (padding left out), then dropout.

    Training and prediction sum the rows with ``embedding_bag`` over the non-padding ids, which never builds the
    ``(n, L, dim)`` tensor of gathered rows; ``embed``/``pool`` (used by explanations and by the ONNX export) build
    it and give the same vector."""

    def __init__(self, buckets: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(buckets + 1, dim, padding_idx=PAD)
        nn.init.normal_(self.embedding.weight, 0.0, 0.1)  # rows are averaged over hundreds of n-grams
        with torch.no_grad():
            self.embedding.weight[PAD].zero_()
        self.dropout = nn.Dropout(dropout)
        self.out_dim = dim

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids)

    def pool(self, keep: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        w = keep.unsqueeze(-1).to(embedded.dtype)
        return self.dropout((embedded * w).sum(1) / w.sum(1).clamp(min=1.0))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if exporting():
            return self.pool(ids != PAD, self.embed(ids))
        keep = ids != PAD
        counts = keep.sum(1)
        offsets = torch.cumsum(counts, 0) - counts
        flat = ids[keep]  # row-major: each row's ids in order, rows one after another
        return self.dropout(F.embedding_bag(flat, self.embedding.weight, offsets.to(flat.dtype), mode="mean"))
