"""The one epoch loop, for every task: AdamW, the learning-rate schedule, gradient clipping, precision,
torch.compile, DDP, early stopping that restores the best weights, a checkpoint every epoch and resume, progress.

What it trains comes from a ``Task`` (``lamina.training.task``): the batches of an epoch, the loss of a batch, the
validation score. ``on_epoch`` is called with each epoch's record once its checkpoint is written (a tuner can prune
there; tests stop a run there as a crash would).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import torch

from lamina import distributed
from lamina.budget import Budget, format_duration
from lamina.errors import LaminaError
from lamina.progress import EpochProgress
from lamina.training.session import Session
from lamina.training.state import LoopState, restore_state, save_state
from lamina.training.steps import check_finite, lr_factor, snapshot, update
from lamina.training.task import Task

log = logging.getLogger("lamina")
OnEpoch = Callable[[dict[str, Any]], None]


def train(task: Task, session: Session, verbose: bool = True, on_epoch: OnEpoch | None = None) -> LoopState:
    """Train ``task.network`` for ``trainer.epochs`` epochs (fewer when early stopping ends it); on return it holds
    the best epoch's weights, the same on every process, in eval mode."""
    trainer, net, device = session.trainer, task.network, session.device
    # The fused kernel does the whole update in one pass: a third less time per step for small networks.
    optimizer = torch.optim.AdamW(net.parameters(), lr=trainer.learning_rate, weight_decay=trainer.weight_decay,
                                  fused=device.type in ("cpu", "cuda"))
    shuffle = torch.Generator().manual_seed(trainer.seed)
    loop = LoopState(snapshot(net))
    if session.checkpoint is not None:
        loop = restore_state(session.checkpoint, net, optimizer, shuffle, session.scaler, device)
        log.info("resuming after epoch %d", loop.epoch)
    model = distributed.wrap(task.module, device) if session.parallel else task.module
    if trainer.compile:
        model = _compiled(task, model, session.autocast)
    progress = EpochProgress(trainer.epochs, loop.epoch, enabled=verbose and distributed.is_main())
    threads_before = torch.get_num_threads()
    if trainer.threads:
        # Small networks gain nothing from a second intra-op thread, and on a busy machine threads waiting on each
        # other can make an epoch many times slower: the knob lets a user pin it.
        torch.set_num_threads(trainer.threads)
    # trainer.time_limit: training seconds counted across resumes; under DDP the slowest rank's, so all stop together.
    budget = Budget(trainer.time_limit, loop.elapsed, session.clock, distributed.all_max if session.parallel else None)
    try:
        for epoch in range(loop.epoch + 1, trainer.epochs + 1):
            if budget.expired(loop.elapsed):  # spent before this epoch (a resumed run)
                break
            record, score = _epoch(task, model, session, optimizer, shuffle, epoch, budget)
            loop.elapsed = budget.elapsed()
            if _finish_epoch(task, session, loop, record, score, optimizer, shuffle, progress, on_epoch):
                break
            if budget.expired(loop.elapsed):  # the schedule has ended; the best epoch's weights are kept
                log.info("stopping at epoch %d: trainer.time_limit (%s) reached; best epoch %d", epoch,
                         format_duration(trainer.time_limit), loop.best_epoch)
                break
    finally:
        progress.close()
        torch.set_num_threads(threads_before)
    net.load_state_dict(loop.best_state)
    if session.parallel:
        distributed.broadcast_tensors(net.state_dict())
    net.eval()
    return loop


def _epoch(task: Task, model: torch.nn.Module, session: Session, optimizer: torch.optim.Optimizer,
           shuffle: torch.Generator, epoch: int, budget: Budget) -> tuple[dict[str, Any], float]:
    """Train one epoch and validate: the epoch's record and its score (lower is better), rank 0's under DDP. Out
    of time (``budget``), the epoch ends after the step in progress."""
    started = time.perf_counter()
    trainer, parallel = session.trainer, session.parallel
    task.module.train()
    step = (epoch - 1) * task.steps_per_epoch
    total_steps = task.steps_per_epoch * trainer.epochs
    running = torch.zeros((), device=session.device)
    trained = 0
    for batch, rows, global_rows in task.batches(shuffle, parallel):
        elapsed = budget.elapsed()
        if budget.expired(elapsed) and trained:  # out of time: stop mid-epoch, after at least one step
            break
        for group in optimizer.param_groups:
            group["lr"] = trainer.learning_rate * lr_factor(trainer, step, total_steps, elapsed)
        with session.autocast:
            loss = task.loss(model, batch)
        # DDP averages the ranks' gradients: weighted so the average is the global batch's mean gradient.
        scaled = loss * (rows * distributed.world_size() / global_rows) if parallel else loss
        update(task.network, optimizer, scaled, trainer.grad_clip, session.scaler)
        running += loss.detach() * rows
        trained += rows
        step += 1
    if parallel:
        running = distributed.all_sum(running)
        trained = int(distributed.all_sum(torch.tensor(trained)))
    if trained == 0:
        raise LaminaError(f"{task.source}: no training row left after cleaning; check the warnings above")
    check_finite(running, epoch, trainer.learning_rate)
    record: dict[str, Any] = {"epoch": epoch, "train_loss": float(running) / trained}
    if task.validates:
        shown, score = task.validate()
        record.update(shown)
    else:
        score = record["train_loss"]
    record["lr"] = optimizer.param_groups[0]["lr"]
    record["seconds"] = time.perf_counter() - started
    if parallel:  # rank 0's numbers, so every rank stops at the same epoch
        record, score = distributed.broadcast((record, score))
    return record, score


def _finish_epoch(task: Task, session: Session, loop: LoopState, record: dict[str, Any], score: float,
                  optimizer: torch.optim.Optimizer, shuffle: torch.Generator, progress: EpochProgress,
                  on_epoch: OnEpoch | None) -> bool:
    """Keep the best weights, log and checkpoint the epoch; True when early stopping ends the run."""
    epoch, patience = record["epoch"], session.trainer.early_stopping.patience
    loop.history.append(record)
    loop.epoch = epoch
    if not task.validates:
        # Nothing held out to choose an epoch by: the model is the last epoch's (live weights, no copy).
        loop.best_score, loop.best_epoch, loop.best_state = score, epoch, task.network.state_dict()
    elif score < loop.best_score:
        loop.best_score, loop.best_epoch, loop.bad_epochs = score, epoch, 0
        loop.best_state = snapshot(task.network)
    else:
        loop.bad_epochs += 1
    progress.update(record)
    if session.writes:
        assert session.workdir is not None
        save_state(session.workdir, task.network, loop, optimizer, shuffle, session.scaler,
                   {**task.state(), "config": session.config.model_dump(mode="json")})
    if on_epoch is not None:
        on_epoch(record)
    if task.validates and patience and loop.bad_epochs >= patience:
        log.info("early stopping at epoch %d: no improvement for %d epochs; best epoch %d", epoch, patience,
                 loop.best_epoch)
        return True
    return False


def _compiled(task: Task, model: torch.nn.Module, autocast: contextlib.AbstractContextManager) -> torch.nn.Module:
    """``model`` under torch.compile, tried first on one batch (forward and backward, where compilation happens):
    without a working compiler (no C++ toolchain, an unsupported op) training goes on eagerly after one warning."""
    compiled = torch.compile(model)
    # The trial must leave no trace: no random draws (dropout), no batch-norm statistics, no gradients.
    rng, saved = torch.get_rng_state(), snapshot(task.network)
    try:
        with autocast:
            loss = task.loss(compiled, task.sample())
        loss.backward()
    except Exception as e:  # noqa: BLE001 - whatever the compiler stack raises, eager training still works
        reason = " ".join(str(e).split())[:200]
        log.warning("trainer.compile: torch.compile failed (%s: %s); training without it", type(e).__name__, reason)
        compiled = model
    finally:
        task.network.zero_grad(set_to_none=True)
        task.network.load_state_dict(saved)
        torch.set_rng_state(rng)
    return compiled
