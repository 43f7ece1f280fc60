"""What the two towers read besides the ID and side columns: each user's history and recent items as padded
matrices, and every user's and item's vector in batches."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from lamina.ranking.towers import TwoTower

MAX_HISTORY = 200  # most recent items a user tower averages


class _BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


@contextlib.contextmanager
def errors_only(logger: logging.Logger) -> Iterator[None]:
    """Let only errors through ``logger`` for a moment, by a filter: the logger's level, which concurrent callers
    share, is left alone."""
    quiet = _BelowError()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def history_matrix(user: np.ndarray, item: np.ndarray, order: np.ndarray, n_users: int, n_items: int,
                   cap: int = MAX_HISTORY) -> tuple[torch.Tensor, np.ndarray]:
    """Each user's last ``cap`` items as a padded (users, length) matrix, and per pair whether it is in there."""
    n = len(user)
    if n == 0:
        return torch.full((n_users, 1), n_items, dtype=torch.long), np.zeros(0, dtype=bool)
    sort = np.lexsort((np.arange(n), order, user))
    u, i = user[sort], item[sort]
    starts = np.r_[0, np.flatnonzero(np.diff(u)) + 1]
    counts = np.diff(np.r_[starts, n])
    position = np.arange(n) - np.repeat(starts, counts)
    skip = np.repeat(np.maximum(counts - cap, 0), counts)
    kept = position >= skip
    matrix = np.full((n_users, max(1, min(cap, counts.max()))), n_items, dtype=np.int64)
    matrix[u[kept], (position - skip)[kept]] = i[kept]
    inside = np.zeros(n, dtype=bool)
    inside[sort[kept]] = True
    return torch.from_numpy(matrix), inside


def recent_items(user: np.ndarray, item: np.ndarray, order: np.ndarray, n_users: int, n_items: int,
                 size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``size`` items each pair's user had just before it (in pair order), and each user's last ``size`` items;
    padded with ``n_items``. Causal: a pair never sees its own item or later ones."""
    n, size = len(user), max(size, 1)
    per_pair = np.full((n, size), n_items, dtype=np.int64)
    per_user = np.full((n_users, size), n_items, dtype=np.int64)
    if n == 0:
        return torch.from_numpy(per_pair), torch.from_numpy(per_user)
    sort = np.lexsort((np.arange(n), order, user))
    u, i = user[sort], item[sort]
    starts = np.r_[0, np.flatnonzero(np.diff(u)) + 1]
    start = np.repeat(starts, np.diff(np.r_[starts, n]))  # per sorted row: where its user's rows begin
    rows = np.arange(n)
    for back in range(1, size + 1):
        j = rows - back
        ok = j >= start
        per_pair[sort[ok], size - back] = i[j[ok]]
    last = np.r_[np.flatnonzero(np.diff(u)), n - 1]  # each user's last sorted row
    for back in range(size):
        j = last - back
        ok = j >= start[last]
        per_user[u[last[ok]], size - 1 - back] = i[j[ok]]
    return torch.from_numpy(per_pair), torch.from_numpy(per_user)


def _vectors(fn: Any, inputs: dict[str, torch.Tensor], *extra: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    n = len(next(iter(inputs.values())))
    out = []
    for s in range(0, n, batch):
        part = {k: v[s:s + batch] for k, v in inputs.items()}
        out.append(fn(part, *[e[s:s + batch] for e in extra]))
    return torch.cat(out)


def embed_all(net: TwoTower, user_inputs: dict[str, torch.Tensor], item_inputs: dict[str, torch.Tensor],
              history: torch.Tensor, recent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every user's and every item's vector (eval mode, no gradients): what serving stores."""
    was = net.training
    net.eval()
    with torch.inference_mode():
        users = _vectors(lambda b, h, r: net.user_vectors(b, h, recent=r), user_inputs, history, recent)
        items = _vectors(net.item_vectors, item_inputs)
    net.train(was)
    return users.float().cpu(), items.float().cpu()
