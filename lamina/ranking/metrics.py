"""Ranking metrics over the full catalogue: Recall@k, NDCG@k, HitRate@k, MRR and catalogue coverage.

Every model is a function from a batch of user codes to a ``(users, items)`` score matrix; the user's earlier items
are masked out, the top k taken by ``torch.topk`` over all items, and each metric averaged over users.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

Scorer = Callable[[np.ndarray], torch.Tensor]
EVAL_BATCH = 512


def csr(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def top_k(scores: torch.Tensor, exclude: sp.csr_matrix | None, users: np.ndarray, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k item codes and scores per row, the ``exclude`` items of each user left out."""
    scores = scores.float().clone()
    if exclude is not None:
        sub = exclude[users].tocoo()
        scores[torch.from_numpy(sub.row.astype(np.int64)), torch.from_numpy(sub.col.astype(np.int64))] = -torch.inf
    k = min(k, scores.shape[1])
    values, index = torch.topk(scores, k, dim=1)
    return index, values


def evaluate(score: Scorer, relevant: sp.csr_matrix, exclude: sp.csr_matrix, k: int, batch: int = EVAL_BATCH) -> dict[str, float]:
    """Metrics of one model for every user with a relevant item; also ``users`` and ``recs_per_second``."""
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    n_items = relevant.shape[1]
    recall, ndcg, hit, rr = [], [], [], []
    shown = np.zeros(n_items, dtype=bool)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    seconds = 0.0
    for start in range(0, len(users), batch):
        chunk = users[start:start + batch]
        started = time.perf_counter()
        scores = score(chunk).float()
        index, _ = top_k(scores, exclude, chunk, k)
        seconds += time.perf_counter() - started
        masked = scores.clone()
        sub = exclude[chunk].tocoo()
        masked[torch.from_numpy(sub.row.astype(np.int64)), torch.from_numpy(sub.col.astype(np.int64))] = -torch.inf
        index = index.numpy()
        shown[index.ravel()] = True
        for row, u in enumerate(chunk):
            rel = relevant.indices[relevant.indptr[u]:relevant.indptr[u + 1]]
            hits = np.isin(index[row], rel)
            recall.append(hits.sum() / len(rel))
            hit.append(float(hits.any()))
            ideal = discount[: min(len(rel), k)].sum()
            ndcg.append(float((discount[: len(hits)] * hits).sum() / ideal))
            # MRR over the full ranking: the first relevant item's rank among the unmasked items.
            best = masked[row, torch.from_numpy(rel.astype(np.int64))].max()
            rr.append(1.0 / (1 + int((masked[row] > best).sum())))
    n = max(len(users), 1)
    return {
        f"recall@{k}": float(np.sum(recall) / n), f"ndcg@{k}": float(np.sum(ndcg) / n),
        f"hit_rate@{k}": float(np.sum(hit) / n), "mrr": float(np.sum(rr) / n),
        "coverage": float(shown.sum() / n_items), "users": len(users),
        "recs_per_second": float(len(users) / seconds) if seconds else float("nan"),
    }
