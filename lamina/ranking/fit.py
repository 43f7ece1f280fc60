"""A recommendation run's training: the interaction log → positives and a per-user split, the two towers trained
by the one loop (``lamina.training.loop``), the most-popular and EASE baselines fitted on the same split, every
model scored on the test users, and the trained ``Recommender`` with every user's and item's vector."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lamina.config import Config
from lamina.errors import LaminaError
from lamina.ranking.baselines import EASE, Popularity
from lamina.ranking.data import PROTOCOL, Interactions, prepare, split_per_user
from lamina.ranking.features import embed_all, history_matrix, recent_items
from lamina.ranking.metrics import csr, evaluate
from lamina.ranking.model import Recommender
from lamina.ranking.task import TwoTowerTask
from lamina.training import loop
from lamina.training.session import start
from lamina.training.splits import fingerprints

log = logging.getLogger("lamina")
NETWORK = "two-tower"


def fit_recommender(config: Config, frame: pd.DataFrame, source: str | None = None, workdir: Path | None = None,
                    resume: bool = False, verbose: bool = True, on_epoch: loop.OnEpoch | None = None) -> Recommender:
    """Train the two towers and the baselines on one split; score all on the test users.

    ``workdir``, ``resume`` and ``on_epoch`` are as for ``lamina.training.fit``; under torchrun every process
    trains its slice of each global batch and returns the same model."""
    rec = config.recommendation
    assert rec is not None
    data = prepare(frame, rec, source)
    for note in data.notes:
        log.info("%s", note)
    parts = split_per_user(data.user, data.time if rec.time else None, config.data.split.seed)
    if len(parts["test"]) == 0:
        raise LaminaError(f"{source or 'data'}: no user has two positive interactions; nothing to evaluate on")
    # Every process must read the same log with the same config: checked before training starts.
    session = start(config, workdir, resume, lambda: fingerprints(config, {"interactions": frame}))
    task = TwoTowerTask(config, data, parts["train"], parts["validation"], session)
    started = time.perf_counter()
    state = loop.train(task, session, verbose, on_epoch)
    info = {"history": state.history, "best_epoch": state.best_epoch, "epochs_run": len(state.history),
            "train_seconds": time.perf_counter() - started}
    net = task.network.cpu()
    users = {k: v.cpu() for k, v in task.users.items()}
    items = {k: v.cpu() for k, v in task.items.items()}
    metrics = _scores(config, data, parts, net, users, items, info["train_seconds"])

    # Serving: every user's vector from all their positives, every item's vector, and what each user has seen.
    n_users, n_items = len(data.users), len(data.items)
    full_history, _ = history_matrix(data.user, data.item, data.time, n_users, n_items)
    _, full_recent = recent_items(data.user, data.item, data.time, n_users, n_items, rec.recent)
    users_s, items_s = embed_all(net, users, items, full_history, full_recent)
    order = "by time" if rec.time else "random order, no time column"
    meta = {
        "metrics": {"test": metrics},
        "protocol": PROTOCOL.format(order=order, items=n_items),
        "split_sizes": {name: int(len(idx)) for name, idx in parts.items()},
        "notes": data.notes,
        **info,
    }
    titles = [None if pd.isna(t) else str(t) for t in data.item_frame[rec.title]] if rec.title else None
    return Recommender(config, task.user_prep, task.item_prep, net, data.users, data.items, titles,
                       np.bincount(data.item, minlength=n_items), users_s, items_s,
                       csr(data.seen_user, data.seen_item, (n_users, n_items)), meta)


def _scores(config: Config, data: Interactions, parts: dict[str, np.ndarray], net, users, items,
            train_seconds: float) -> dict[str, dict[str, float]]:
    """The two towers' and the baselines' ranking metrics on the test users, the same protocol for all."""
    rec = config.recommendation
    assert rec is not None
    n_users, n_items, k = len(data.users), len(data.items), rec.k
    x = {name: csr(data.user[idx], data.item[idx], (n_users, n_items)) for name, idx in parts.items()}
    known = x["train"] + x["validation"]
    known.data[:] = 1.0
    train = parts["train"]
    history, _ = history_matrix(data.user[train], data.item[train], data.time[train], n_users, n_items)
    _, recent = recent_items(data.user[train], data.item[train], data.time[train], n_users, n_items, rec.recent)
    users_v, items_v = embed_all(net, users, items, history, recent)
    metrics = {NETWORK: {**evaluate(lambda u: users_v[u] @ items_v.T, x["test"], known, k),
                         "train_seconds": train_seconds}}
    for name in rec.baselines:
        started = time.perf_counter()
        model = Popularity().fit(x["train"]) if name == "popularity" else EASE(rec.ease_lambda).fit(x["train"])
        seconds = time.perf_counter() - started
        metrics[model.name] = {**evaluate(model.score, x["test"], known, k), "train_seconds": seconds}
    return metrics
