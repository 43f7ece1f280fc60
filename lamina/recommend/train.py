"""A recommendation run: interaction log → two-tower network, trained with in-batch sampled softmax (popularity
corrected) or BPR, early-stopped on validation NDCG@k, compared with most-popular and EASE on the same split.

Seeding, device choice, the learning-rate schedule, progress and the atomic model directory are the shared pieces
of ``lamina.training`` / ``lamina.run``; only the batch and loss step is the ranking model's own.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from lamina.config import Config, InputSpec
from lamina.errors import LaminaError
from lamina.logs import quiet
from lamina.preprocessor import Preprocessor
from lamina.progress import EpochProgress
from lamina.recommend.baselines import EASE, Popularity
from lamina.recommend.data import PROTOCOL, Interactions, prepare, split_per_user
from lamina.recommend.metrics import csr, evaluate
from lamina.recommend.towers import TwoTower
from lamina.budget import Budget, format_duration
from lamina.training import check_finite, lr_factor, pick_device, seed_everything, update

log = logging.getLogger("lamina")
MAX_HISTORY = 200  # most recent items a user tower averages
NETWORK = "two-tower"


def tower_preprocessors(config: Config) -> tuple[Preprocessor, Preprocessor]:
    """One Preprocessor per tower: its ID as a category embedding, then its side columns, each with its own type."""
    rec = config.recommendation
    def spec(name: str) -> InputSpec:
        return InputSpec.model_validate({"name": name, "type": "category", "options": {"embedding_dim": rec.embedding_dim}})
    user = SimpleNamespace(inputs=[spec(rec.user), *rec.user_features], outputs=[], hidden=config.hidden)
    item = SimpleNamespace(inputs=[spec(rec.item), *rec.item_features], outputs=[], hidden=config.hidden)
    return Preprocessor(user), Preprocessor(item)  # type: ignore[arg-type]


def build_network(config: Config, user_prep: Preprocessor, item_prep: Preprocessor, n_items: int) -> TwoTower:
    rec = config.recommendation
    return TwoTower(user_prep.inputs, item_prep.inputs, config.hidden, rec.embedding_dim, n_items, rec.history,
                    rec.recent)


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


def fit_two_tower(config: Config, data: Interactions, train: np.ndarray, valid: np.ndarray,
                  verbose: bool = True) -> tuple[TwoTower, Preprocessor, Preprocessor, dict[str, Any]]:
    rec, trainer = config.recommendation, config.trainer
    seed_everything(trainer.seed)
    device = pick_device(trainer.device)
    n_users, n_items = len(data.users), len(data.items)
    user_prep, item_prep = tower_preprocessors(config)
    trained_items = np.unique(data.item[train])
    user_prep.fit(data.user_frame.iloc[np.unique(data.user[train])], "users")
    item_prep.fit(data.item_frame.iloc[trained_items], "items")
    with quiet():  # items only in validation/test use the unknown ID embedding, as intended
        user_inputs = {k: v.to(device) for k, v in user_prep.inputs_to_tensors(data.user_frame, "users").items()}
        item_inputs = {k: v.to(device) for k, v in item_prep.inputs_to_tensors(data.item_frame, "items").items()}
    history, inside = history_matrix(data.user[train], data.item[train], data.time[train], n_users, n_items)
    history = history.to(device)
    pair_recent, user_recent = recent_items(data.user[train], data.item[train], data.time[train], n_users, n_items,
                                            rec.recent)
    pair_recent, user_recent = pair_recent.to(device), user_recent.to(device)
    pu = torch.from_numpy(data.user[train]).to(device)
    pi = torch.from_numpy(data.item[train]).to(device)
    leave = torch.where(torch.from_numpy(inside).to(device), pi, torch.full_like(pi, n_items))
    counts = torch.bincount(pi, minlength=n_items).float()
    log_q = torch.log(counts.clamp(min=1) / counts.sum())

    net = build_network(config, user_prep, item_prep, n_items).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=trainer.learning_rate, weight_decay=trainer.weight_decay)
    shuffle = torch.Generator().manual_seed(trainer.seed)
    n = len(pu)
    batch_size = min(trainer.batch_size, n)
    bounds = list(range(0, n, batch_size)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        bounds.pop(-2)
    total_steps = (len(bounds) - 1) * trainer.epochs
    x_train = csr(data.user[train], data.item[train], (n_users, n_items))
    x_valid = csr(data.user[valid], data.item[valid], (n_users, n_items))
    has_valid = x_valid.nnz > 0
    k = rec.k

    history_log: list[dict[str, Any]] = []
    best, best_epoch, bad = -math.inf, 0, 0
    best_state = copy.deepcopy(net.state_dict())
    progress = EpochProgress(trainer.epochs, 0, enabled=verbose)
    started_all = time.perf_counter()
    budget = Budget(trainer.time_limit)  # trainer.time_limit: the schedule ends and training stops when it is spent
    elapsed = 0.0
    try:
        for epoch in range(1, trainer.epochs + 1):
            started = time.perf_counter()
            net.train()
            order = torch.randperm(n, generator=shuffle).to(device)
            step = (epoch - 1) * (len(bounds) - 1)
            running, trained = torch.zeros((), device=device), 0
            for start, end in zip(bounds, bounds[1:]):
                index = order[start:end]
                elapsed = budget.elapsed()
                if budget.expired(elapsed) and start:  # out of time: stop mid-epoch, after at least one step
                    break
                for group in optimizer.param_groups:
                    group["lr"] = trainer.learning_rate * lr_factor(trainer, step, total_steps, elapsed)
                ub, ib = pu[index], pi[index]
                uv = net.user_vectors({k_: v[ub] for k_, v in user_inputs.items()}, history[ub], leave[index],
                                      pair_recent[index])
                iv = net.item_vectors({k_: v[ib] for k_, v in item_inputs.items()})
                if rec.loss == "softmax":
                    # In-batch negatives; subtracting log q(item) undoes the bias of popular items being
                    # negatives more often (Yi et al., 2019). Other rows of the same item are not negatives.
                    logits = uv @ iv.T / rec.temperature
                    if rec.popularity_correction:
                        logits = logits - log_q[ib][None, :]
                    same = ib[None, :] == ib[:, None]
                    same.fill_diagonal_(False)
                    logits = logits.masked_fill(same, -torch.inf)
                    loss = F.cross_entropy(logits, torch.arange(len(ib), device=device))
                else:
                    neg = torch.randint(0, n_items, (len(ib),), generator=shuffle).to(device)
                    nv = net.item_vectors({k_: v[neg] for k_, v in item_inputs.items()})
                    loss = -F.logsigmoid(((uv * iv).sum(-1) - (uv * nv).sum(-1)) / rec.temperature).mean()
                update(net, optimizer, loss, trainer.grad_clip)
                running += loss.detach() * len(index)
                trained += len(index)
                step += 1
            check_finite(running, epoch, trainer.learning_rate)
            record: dict[str, Any] = {"epoch": epoch, "train_loss": float(running) / trained}
            if has_valid:
                users_v, items_v = embed_all(net, user_inputs, item_inputs, history, user_recent)
                scores = evaluate(lambda u: users_v[u] @ items_v.T, x_valid, x_train, k)
                record[f"val_ndcg@{k}"] = scores[f"ndcg@{k}"]
                score = scores[f"ndcg@{k}"]
            else:
                score = -record["train_loss"]
            record["lr"] = optimizer.param_groups[0]["lr"]
            record["seconds"] = time.perf_counter() - started
            history_log.append(record)
            if score > best:
                best, best_epoch, bad = score, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                bad += 1
            progress.update(record)
            patience = trainer.early_stopping.patience
            if budget.expired(budget.elapsed()):
                log.info("stopping at epoch %d: trainer.time_limit (%s) reached; best epoch %d", epoch,
                         format_duration(trainer.time_limit), best_epoch)
                break
            if has_valid and patience and bad >= patience:
                log.info("early stopping at epoch %d: validation NDCG@%d did not improve for %d epochs; best epoch %d",
                         epoch, k, patience, best_epoch)
                break
    finally:
        progress.close()
    net.load_state_dict(best_state)
    net.eval()
    info = {"history": history_log, "best_epoch": best_epoch, "epochs_run": len(history_log),
            "train_seconds": time.perf_counter() - started_all}
    return net.cpu(), user_prep, item_prep, info


def fit_and_compare(config: Config, frame: pd.DataFrame, source: str | None = None, verbose: bool = True):
    """Train the two-tower and the baselines on one split; score all on the test users. Returns the Recommender."""
    from lamina.recommend.model import Recommender

    rec = config.recommendation
    data = prepare(frame, rec, source)
    for note in data.notes:
        log.info("%s", note)
    parts = split_per_user(data.user, data.time if rec.time else None, config.data.split.seed)
    if len(parts["test"]) == 0:
        raise LaminaError(f"{source or 'data'}: no user has two positive interactions; nothing to evaluate on")
    n_users, n_items = len(data.users), len(data.items)
    x = {name: csr(data.user[idx], data.item[idx], (n_users, n_items)) for name, idx in parts.items()}
    known = x["train"] + x["validation"]
    known.data[:] = 1.0

    net, user_prep, item_prep, info = fit_two_tower(config, data, parts["train"], parts["validation"], verbose)
    user_inputs = user_prep.inputs_to_tensors(data.user_frame, "users")
    with quiet():
        item_inputs = item_prep.inputs_to_tensors(data.item_frame, "items")
    train = parts["train"]
    history, _ = history_matrix(data.user[train], data.item[train], data.time[train], n_users, n_items)
    _, recent = recent_items(data.user[train], data.item[train], data.time[train], n_users, n_items, rec.recent)
    users_v, items_v = embed_all(net, user_inputs, item_inputs, history, recent)

    k = rec.k
    metrics: dict[str, dict[str, float]] = {}
    metrics[NETWORK] = evaluate(lambda u: users_v[u] @ items_v.T, x["test"], known, k)
    metrics[NETWORK]["train_seconds"] = info["train_seconds"]
    for name in rec.baselines:
        started = time.perf_counter()
        model = Popularity().fit(x["train"]) if name == "popularity" else EASE(rec.ease_lambda).fit(x["train"])
        seconds = time.perf_counter() - started
        metrics[model.name] = {**evaluate(model.score, x["test"], known, k), "train_seconds": seconds}

    # Serving: every user's vector from all their positives, every item's vector, and what each user has seen.
    full_history, _ = history_matrix(data.user, data.item, data.time, n_users, n_items)
    _, full_recent = recent_items(data.user, data.item, data.time, n_users, n_items, rec.recent)
    users_s, items_s = embed_all(net, user_inputs, item_inputs, full_history, full_recent)
    popularity = np.bincount(data.item, minlength=n_items)
    order = "by time" if rec.time else "random order, no time column"
    meta = {
        "metrics": {"test": metrics},
        "protocol": PROTOCOL.format(order=order, items=n_items),
        "split_sizes": {name: int(len(idx)) for name, idx in parts.items()},
        "notes": data.notes,
        **info,
    }
    return Recommender(config, user_prep, item_prep, net, data.users, data.items,
                       [None if pd.isna(t) else str(t) for t in data.item_frame[rec.title]] if rec.title else None,
                       popularity, users_s, items_s, csr(data.seen_user, data.seen_item, (n_users, n_items)), meta)


def train_recommendation(config: Config, base_dir: Path, name: str, data: pd.DataFrame | None = None,
                         output_dir: str | os.PathLike = "runs", output: str | os.PathLike | None = None,
                         verbose: bool = True, resume: bool = False):
    """``lamina.train`` for ``task: recommendation``: read the log, fit, write the model directory atomically."""
    if resume:
        log.warning("--resume is not supported for recommendation runs yet; training from the start")
    from lamina.data.load import resolve
    from lamina.data.read import read_table
    from lamina.config import dump_config
    from lamina.run import free_name, incomplete_dir
    from lamina.training import METRICS_LOG
    from lamina.store import publish

    if data is not None:
        frame, source = read_table(data), "data"
    else:
        if not config.data.path:
            raise LaminaError("data.path is not set in the config; a recommendation reads one interaction log "
                              "(the split is per user, so data.train/validation/test are not used)")
        source = str(resolve(config.data.path, base_dir))
        frame = read_table(source, config.data.format)
    model = fit_and_compare(config, frame, source, verbose)
    out_root = Path(output).parent if output else Path(output_dir)
    staging = incomplete_dir(out_root, Path(output).name if output else name)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.write(staging)
    (staging / "config.yaml").write_text(dump_config(config), encoding="utf-8")
    lines = "".join(json.dumps(record) + "\n" for record in model.info.get("history", []))
    (staging / METRICS_LOG).write_text(lines, encoding="utf-8")
    destination = Path(output) if output else free_name(out_root, name)
    publish(staging, destination)
    model.info["run_dir"] = str(destination)
    return model
