"""The two-tower recommender as a task of the one training loop: in-batch sampled softmax (popularity corrected)
or BPR over the training pairs, early-stopped on validation NDCG@k.

Under DDP each process scores its slice of a global batch's users against every item of that batch, so the
in-batch negatives, and therefore the loss, are those of one process training the whole batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lamina import distributed
from lamina.config import Config, RecommendationConfig
from lamina.ranking.data import Interactions
from lamina.ranking.features import embed_all, errors_only, history_matrix, recent_items
from lamina.ranking.metrics import csr, evaluate
from lamina.ranking.model import build_network, tower_preprocessors
from lamina.ranking.towers import TwoTower
from lamina.training.session import Session
from lamina.training.splits import batch_bounds
from lamina.training.task import Batch

log = logging.getLogger("lamina")
Tensors = dict[str, torch.Tensor]


class PairLoss(nn.Module):
    """The loss of a batch of (user, item) pairs as a module's forward, which is what DDP and torch.compile wrap.
    Holds the network and, as plain attributes (not checkpointed, not broadcast), the tensors the towers read."""

    def __init__(self, network: TwoTower, rec: RecommendationConfig, tensors: Tensors,
                 users: Tensors, items: Tensors) -> None:
        super().__init__()
        self.network, self.rec = network, rec
        self.pair_user, self.pair_item = tensors["pair_user"], tensors["pair_item"]
        self.history, self.leave, self.recent, self.log_q = (tensors["history"], tensors["leave"],
                                                             tensors["pair_recent"], tensors["log_q"])
        self.users, self.items = users, items

    def forward(self, batch: Tensors) -> torch.Tensor:
        index, mine = batch["index"], batch["mine"]  # the global batch's pairs; this process's positions in it
        own = index[mine]
        ub, ib = self.pair_user[own], self.pair_item[index]
        uv = self.network.user_vectors({k: v[ub] for k, v in self.users.items()}, self.history[ub],
                                       self.leave[own], self.recent[own])
        if self.rec.loss == "softmax":
            # In-batch negatives; subtracting log q(item) undoes the bias of popular items being negatives more
            # often (Yi et al., 2019). Other rows of the same item are not negatives.
            iv = self.network.item_vectors({k: v[ib] for k, v in self.items.items()})
            logits = uv @ iv.T / self.rec.temperature
            if self.rec.popularity_correction:
                logits = logits - self.log_q[ib][None, :]
            same = ib[None, :] == ib[mine][:, None]
            same[torch.arange(len(mine), device=same.device), mine] = False
            return F.cross_entropy(logits.masked_fill(same, -torch.inf), mine)
        iv = self.network.item_vectors({k: v[ib[mine]] for k, v in self.items.items()})
        nv = self.network.item_vectors({k: v[batch["negative"][mine]] for k, v in self.items.items()})
        return -F.logsigmoid(((uv * iv).sum(-1) - (uv * nv).sum(-1)) / self.rec.temperature).mean()


def _pair_tensors(data: Interactions, train: np.ndarray, recent: int, device: torch.device) -> Tensors:
    """The training pairs and what the user tower reads for each: history (less the pair's item), recent items."""
    n_users, n_items = len(data.users), len(data.items)
    user, item, time = data.user[train], data.item[train], data.time[train]
    history, inside = history_matrix(user, item, time, n_users, n_items)
    pair_recent, user_recent = recent_items(user, item, time, n_users, n_items, recent)
    pair_item = torch.from_numpy(item).to(device)
    counts = torch.bincount(pair_item, minlength=n_items).float()
    return {
        "pair_user": torch.from_numpy(user).to(device), "pair_item": pair_item, "history": history.to(device),
        "leave": torch.where(torch.from_numpy(inside).to(device), pair_item, torch.full_like(pair_item, n_items)),
        "pair_recent": pair_recent.to(device), "user_recent": user_recent.to(device),
        "log_q": torch.log(counts.clamp(min=1) / counts.sum()),
    }


class TwoTowerTask:
    def __init__(self, config: Config, data: Interactions, train: np.ndarray, valid: np.ndarray,
                 session: Session) -> None:
        rec = config.recommendation
        assert rec is not None
        self.rec, self.session, self.source = rec, session, "interactions"
        device = session.device
        n_users, self.n_items = len(data.users), len(data.items)
        saved = session.saved
        self.user_prep, self.item_prep = tower_preprocessors(config, saved["preprocessor"] if saved else None)
        if saved is None:
            self.user_prep.fit(data.user_frame.iloc[np.unique(data.user[train])], "users")
            self.item_prep.fit(data.item_frame.iloc[np.unique(data.item[train])], "items")
        with errors_only(log):  # items only in validation/test use the unknown ID embedding, as intended
            self.users = {k: v.to(device) for k, v in self.user_prep.inputs_to_tensors(data.user_frame, "users").items()}
            self.items = {k: v.to(device) for k, v in self.item_prep.inputs_to_tensors(data.item_frame, "items").items()}
        self.tensors = _pair_tensors(data, train, rec.recent, device)
        self.network = build_network(config, self.user_prep, self.item_prep, self.n_items).to(device)
        self.module = PairLoss(self.network, rec, self.tensors, self.users, self.items)
        self.n = len(train)
        self.bounds = batch_bounds(self.n, min(session.trainer.batch_size, self.n))
        self.steps_per_epoch = len(self.bounds) - 1
        self.x_train = csr(data.user[train], data.item[train], (n_users, self.n_items))
        self.x_valid = csr(data.user[valid], data.item[valid], (n_users, self.n_items))
        self.validates = self.x_valid.nnz > 0

    def batches(self, shuffle: torch.Generator, parallel: bool) -> Iterator[Batch]:
        device = self.session.device
        order = torch.randperm(self.n, generator=shuffle).to(device)
        for start, end in zip(self.bounds, self.bounds[1:]):
            batch = {"index": order[start:end]}
            if self.rec.loss == "bpr":  # drawn for the global batch, the same on every process
                batch["negative"] = torch.randint(0, self.n_items, (end - start,), generator=shuffle).to(device)
            mine, rows = torch.arange(end - start, device=device), end - start
            if parallel:
                mine, rows = distributed.shard(mine)
            batch["mine"] = mine
            yield batch, rows, end - start

    def loss(self, model: nn.Module, batch: Tensors) -> torch.Tensor:
        return model(batch)

    def sample(self) -> Tensors:
        rows, device = self.bounds[1], self.session.device
        index = torch.arange(rows, device=device)
        return {"index": index, "mine": index, "negative": torch.zeros(rows, dtype=torch.long, device=device)}

    def validate(self) -> tuple[dict[str, float], float]:
        k = self.rec.k
        users, items = embed_all(self.network, self.users, self.items, self.tensors["history"],
                                 self.tensors["user_recent"])
        ndcg = evaluate(lambda u: users[u] @ items.T, self.x_valid, self.x_train, k)[f"ndcg@{k}"]
        return {f"val_ndcg@{k}": ndcg}, -ndcg

    def state(self) -> dict[str, Any]:
        return {"preprocessor": {"user": self.user_prep.state(), "item": self.item_prep.state()}}
