"""The supervised network as a task of the one loop, and ``fit``: preprocessing fitted on the training split, the
network trained, decoding tuned on validation, every split scored.

Batches are slices of in-memory tensors picked by a seeded permutation: no DataLoader, whose per-step cost
(~0.6 ms) would dominate the small networks tables need. With ``data.streaming`` the batches come from
``lamina.data.stream`` instead (a Parquet file read a few row groups at a time).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lamina import distributed
from lamina.buckets import bucket_order, sequence_lengths
from lamina.config import Config
from lamina.data.stream import ParquetStream, RepeatFilter
from lamina.errors import LaminaError
from lamina.predictor import Predictor, run_network
from lamina.preprocessor import Preprocessor
from lamina.training import loop
from lamina.training.moves import moves_for
from lamina.training.session import Session, start
from lamina.training.splits import Split, batch_bounds, fingerprints, make_split, memory_batches, on_device, scored_rows
from lamina.training.task import Batch

log = logging.getLogger("lamina")
Tensors = dict[str, torch.Tensor]


@dataclass
class Fitted:
    predictor: Predictor
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0


def total_loss(out: Tensors, targets: Tensors, losses: dict[str, torch.nn.Module],
               weights: dict[str, float]) -> torch.Tensor:
    """The weighted sum of the outputs' losses, without extra ops when there is one output of weight 1."""
    total: torch.Tensor | None = None
    for name, raw in out.items():
        part = losses[name](raw, targets[name])
        if weights[name] != 1.0:
            part = part * weights[name]
        total = part if total is None else total + part
    assert total is not None
    return total


class SupervisedTask:
    """Inputs → hidden → one head per target, trained on the weighted sum of the heads' losses and early-stopped on
    ``trainer.early_stopping.metric`` over the validation split."""

    def __init__(self, prep: Preprocessor, train: Split, valid: Split | None, session: Session,
                 stream: ParquetStream | None, source: str | None) -> None:
        self.prep, self.train, self.valid, self.session, self.stream = prep, train, valid, session, stream
        self.validates = valid is not None and len(valid) > 0
        self.source = stream.path if stream else "train"
        self.train_source = source
        device = session.device
        self.network = self.module = prep.network().to(device)
        self.losses = {t.name: t.loss().to(device) for t in prep.outputs}
        self.weights = {t.name: t.options.loss_weight for t in prep.outputs}
        self.moves = moves_for(prep.inputs, prep.outputs)
        n = len(train)
        self.batch_size = min(session.trainer.batch_size, n if stream is None else stream.num_rows)
        self.bounds = batch_bounds(n, self.batch_size)
        self.steps_per_epoch = (len(self.bounds) - 1 if stream is None
                                else math.ceil(stream.num_rows / self.batch_size))
        # Streamed, the training rows arrive window by window; the in-memory sample stays on the CPU.
        self.inputs = {k: v.to(device) for k, v in train.inputs.items()} if stream is None else {}
        self.targets = {k: v.to(device) for k, v in train.targets.items()} if stream is None else {}
        self.lengths = sequence_lengths(train.inputs) if stream is None else None

    def batches(self, shuffle: torch.Generator, parallel: bool) -> Iterator[Batch]:
        if self.stream is not None:
            return on_device(self.stream.batches(self._streamed, self.batch_size, shuffle, self.session.ranks()),
                             self.session.device)
        order = torch.randperm(len(self.train), generator=shuffle)
        if self.lengths is not None:  # texts: batches of similar lengths, trimmed by the encoders
            order = bucket_order(order, self.lengths, self.batch_size, shuffle)
        return memory_batches(self.inputs, self.targets, order.to(self.session.device), self.bounds, parallel)

    def _streamed(self, frame: pd.DataFrame) -> tuple[Tensors, Tensors]:
        # Cleaned as a held-out split is: classes the fit sample never had cannot enter the loss.
        split = make_split(self.prep, frame, self.train_source, "streamed train")
        return split.inputs, split.targets

    def loss(self, model: torch.nn.Module, batch: tuple[Tensors, Tensors]) -> torch.Tensor:
        inputs, targets = batch
        if self.moves is not None:
            inputs, targets = self.moves(inputs, targets)
        return total_loss(model(inputs), targets, self.losses, self.weights)

    def sample(self) -> tuple[Tensors, Tensors]:
        rows, device = min(self.batch_size, len(self.train)), self.session.device
        return ({k: v[:rows].to(device) for k, v in self.train.inputs.items()},
                {k: v[:rows].to(device) for k, v in self.train.targets.items()})

    def validate(self) -> tuple[dict[str, float], float]:
        assert self.valid is not None
        raw = run_network(self.network, self.valid.inputs)
        shown = {"val_loss": self._val_loss(raw)}
        metric = self.session.trainer.early_stopping.metric
        blind = next((t for t in self.prep.outputs if not t.scores_held_out_loss), None)
        if metric == "loss" and blind is not None:  # held-out people have no class in the loss: watch their metric
            metric = f"{blind.name}.{blind.primary_metric}"
        if metric == "loss":
            return shown, shown["val_loss"]
        output, _, name = metric.partition(".")
        t = next(o for o in self.prep.outputs if o.name == output)
        value = float(t.metrics(self.valid.frame[output], raw[output]).get(name, float("nan")))
        shown[f"val_{metric}"] = value
        return shown, -value if t.is_higher_better(name) else value

    def _val_loss(self, raw: dict[str, np.ndarray]) -> float:
        """Validation loss, weighted across outputs as in training."""
        assert self.valid is not None
        total, device = 0.0, self.session.device
        with torch.no_grad():
            for t in self.prep.outputs:
                # People never trained on have no class in the training loss: their type scores them its way.
                part = t.held_out_loss(raw[t.name], self.valid.frame[t.name])
                if part is None:
                    part = float(self.losses[t.name](torch.from_numpy(raw[t.name]).to(device),
                                                     self.valid.targets[t.name].to(device)))
                total += t.options.loss_weight * part
        return total

    def state(self) -> dict[str, Any]:
        return {"preprocessor": self.prep.state()}


def fit(
    config: Config,
    frames: dict[str, pd.DataFrame],
    sources: dict[str, str] | None = None,
    workdir: Path | None = None,
    resume: bool = False,
    verbose: bool = True,
    cache_dir: Path | None = None,
    stream: ParquetStream | None = None,
    on_epoch: loop.OnEpoch | None = None,
    clock: Callable[[], float] = time.monotonic,
    preprocessing: dict[str, Any] | None = None,
    calibrate: bool = True,
) -> Fitted:
    """Fit the preprocessor on ``frames['train']``, train the network, tune decoding on validation, score every split.

    ``workdir`` receives a checkpoint every epoch and ``metrics.jsonl``; with ``resume`` training continues from the
    checkpoint there. ``on_epoch`` sees each epoch's record after its checkpoint (``lamina.training.loop``).
    ``cache_dir`` keeps what input types derive from files (decoded images) for the run. ``clock`` measures the
    training time that ``trainer.time_limit`` bounds (injectable for tests).

    With ``stream`` (``data.streaming``) the training batches come from that Parquet file a few row groups at a
    time; ``frames['train']`` is then the bounded sample of it that the preprocessing is fitted and scored on.

    Under torchrun (``WORLD_SIZE`` > 1) this is data-parallel training (``lamina.distributed``): every rank fits the
    same preprocessing and trains on its slice of each global batch of ``trainer.batch_size`` rows, only rank 0
    writes to ``workdir``, and every rank returns the same model and metrics.

    Hook for cross-fitting (``lamina.folds``): ``preprocessing`` is a fitted preprocessor state to use instead of
    fitting one on ``frames['train']`` (every fold's network shares one), and ``calibrate=False`` leaves decoding
    untuned (the folds tune it on their out-of-fold predictions).
    """
    sources = sources or {}
    session = start(config, workdir, resume, lambda: fingerprints(config, frames, stream), clock)
    _check_stream(config, frames, stream)
    saved = session.saved
    prep = Preprocessor(config, saved["preprocessor"] if saved else preprocessing, cache_dir)
    if saved is None and preprocessing is None:
        prep.fit(frames["train"], sources.get("train"))
    splits = {name: make_split(prep, frame, sources.get(name), name) for name, frame in frames.items()}
    if session.parallel:
        distributed.check_agreement({
            "fitted preprocessing": distributed.digest(prep.state()),
            "rows left after cleaning": distributed.digest({k: len(v) for k, v in splits.items()}),
        })
    if len(splits["train"]) == 0:
        raise LaminaError("the training split is empty; check data.split.fractions or the train file")
    task = SupervisedTask(prep, splits["train"], splits.get("validation"), session, stream, sources.get("train"))
    if not task.validates:
        log.warning("no validation rows: early stopping and threshold tuning are off")
    repeats = RepeatFilter()
    if stream is not None:
        log.addFilter(repeats)
    try:
        state = loop.train(task, session, verbose, on_epoch)
    finally:
        log.removeFilter(repeats)
        if repeats.dropped:
            log.info("%d repeated warning(s) from streamed row groups not shown", repeats.dropped)
    predictor = _finish(task, splits, config.trainer.seed, calibrate)
    predictor.info["best_epoch"] = state.best_epoch
    predictor.info["epochs_run"] = len(state.history)
    return Fitted(predictor, state.history, state.best_epoch)


def _finish(task: SupervisedTask, splits: dict[str, Split], seed: int, calibrate: bool = True) -> Predictor:
    """Calibrate decoding on validation (thresholds, temperatures) and score every split with the best weights."""
    prep, net = task.prep, task.network
    if task.validates and calibrate:
        assert task.valid is not None
        raw = run_network(net, task.valid.inputs)
        for t in prep.outputs:
            t.calibrate(raw[t.name], task.valid.frame[t.name])
    predictor = Predictor(prep, net.cpu())
    # The splits' tensors are already made: scoring them again from the frames would decode and tokenize twice.
    metrics = {name: predictor.score(*scored_rows(prep, name, split, seed), intervals=name == "test")
               for name, split in splits.items() if len(split)}
    predictor.info["metrics"] = distributed.broadcast(metrics) if task.session.parallel else metrics
    prep.set_cache_dir(None)  # the run's cache goes with the run; later predictions decode into memory
    return predictor


def _check_stream(config: Config, frames: dict[str, pd.DataFrame], stream: ParquetStream | None) -> None:
    if config.data.streaming and stream is None:  # a caller that loaded the splits but opened no stream
        log.warning("data.streaming is on but no stream was given: training on the %d-row fit sample only",
                    len(frames["train"]))
    if stream is not None and len(stream.group_rows) < distributed.world_size():
        raise LaminaError(f"{stream.path}: {len(stream.group_rows)} row group(s) for {distributed.world_size()} "
                          "processes; each process streams its own row groups: write the file with smaller ones")
