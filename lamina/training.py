"""The one training loop: AdamW, a learning-rate schedule, gradient clipping, early stopping that restores the best
weights, a checkpoint every epoch and resume. Every model Lamina trains goes through ``fit``.

Batches are slices of in-memory tensors picked by a seeded permutation: no DataLoader, whose per-step cost
(~0.6 ms) would dominate the small networks tables need. With ``data.streaming`` the same loop body takes its
batches from ``lamina.data.stream`` instead (a Parquet file read a few row groups at a time); ``trainer.precision``
runs forward and loss under autocast, and ``trainer.compile`` runs them through torch.compile.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lamina import distributed
from lamina.budget import Budget, format_duration, progress as schedule_progress
from lamina.buckets import bucket_order, sequence_lengths
from lamina.checkpoint import load_checkpoint, write_atomic, load_optimizer, optimizer_tensors, save_checkpoint
from lamina.config import Config, TrainerConfig
from lamina.data.stream import Batch, ParquetStream, RepeatFilter
from lamina.errors import LaminaError
from lamina.model import Network, teacher_key, without_teacher
from lamina.predictor import Predictor, run_network
from lamina.preprocessor import Preprocessor
from lamina.progress import EpochProgress

log = logging.getLogger("lamina")
METRICS_LOG = "metrics.jsonl"
TRAIN_GENERATE = 2000  # training rows scored by generation when an output is text


@dataclass
class Split:
    frame: pd.DataFrame
    inputs: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return len(self.frame)


@dataclass
class Fitted:
    predictor: Predictor
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise LaminaError("trainer.device is 'cuda' but no CUDA GPU is available; use 'auto' or 'cpu'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_factor(trainer: TrainerConfig, step: int, total: int, elapsed: float = 0.0) -> float:
    """The schedule as a pure function of the step (and, with ``trainer.time_limit``, of the training seconds
    spent), so resuming needs only the step count and the time spent."""
    progress = schedule_progress(step, total, elapsed, trainer.time_limit)
    if trainer.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if trainer.schedule == "onecycle":
        warm = 0.3  # as torch's OneCycleLR: rise for 30 % of the steps, then anneal with a cosine
        if progress < warm:
            return 0.04 + 0.96 * progress / warm
        return 0.5 * (1 + math.cos(math.pi * (progress - warm) / (1 - warm)))
    return 1.0


def _split(prep: Preprocessor, frame: pd.DataFrame, source: str | None, name: str) -> Split:
    if len(frame):
        frame = prep.drop_missing_targets(frame, source)
        frame = prep.drop_bad_inputs(frame, f"{source} ({name} split)" if source else name)
    if len(frame) and name != "train":
        frame = prep.drop_unseen_classes(frame, f"{source} ({name} split)" if source else name)
    if len(frame) == 0:
        return Split(frame, {}, {})
    inputs, targets = prep.inputs_to_tensors(frame, source), prep.targets_to_tensors(frame, source)
    # Sequence heads read their target in training and for the validation loss (teacher forcing).
    inputs.update({teacher_key(t.name): targets[t.name] for t in prep.outputs if t.sequence})
    return Split(frame, inputs, targets)


def update(net: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float | None,
           scaler: torch.amp.GradScaler | None = None) -> None:
    """One optimizer step: backward, clip the gradient norm, step; with fp16's ``scaler`` the loss is scaled up so
    small gradients survive in half precision, and the gradients are unscaled before clipping sees them."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        optimizer.step()
        return
    scaler.scale(loss).backward()
    if grad_clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    scaler.step(optimizer)  # skipped when the scaled gradients overflowed; the scale then shrinks
    scaler.update()


def check_finite(running: torch.Tensor, epoch: int, learning_rate: float) -> None:
    if not torch.isfinite(running):
        raise LaminaError(
            f"training diverged at epoch {epoch} (loss is not finite); lower trainer.learning_rate "
            f"(now {learning_rate}) or check the data for extreme values"
        )


def _snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights; cloning tensors costs a quarter of deepcopying the state dict."""
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _total_loss(out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                losses: dict[str, torch.nn.Module], weights: dict[str, float]) -> torch.Tensor:
    """The weighted sum of the outputs' losses, without extra ops when there is one output of weight 1."""
    total: torch.Tensor | None = None
    for name, raw in out.items():
        part = losses[name](raw, targets[name])
        if weights[name] != 1.0:
            part = part * weights[name]
        total = part if total is None else total + part
    assert total is not None
    return total


def _val_loss(prep: Preprocessor, split: Split, raw: dict[str, np.ndarray], losses: dict[str, torch.nn.Module],
              device: torch.device) -> float:
    """Validation loss, weighted across outputs as in training."""
    total = 0.0
    with torch.no_grad():
        for t in prep.outputs:
            part = losses[t.name](torch.from_numpy(raw[t.name]).to(device), split.targets[t.name].to(device))
            total += t.options.loss_weight * float(part)
    return total


def _stopping_value(prep: Preprocessor, config: Config, split: Split, raw: dict[str, np.ndarray], val_loss: float) -> tuple[float, bool]:
    metric = config.trainer.early_stopping.metric
    if metric == "loss":
        return val_loss, False
    output, _, name = metric.partition(".")
    t = next(o for o in prep.outputs if o.name == output)
    value = t.metrics(split.frame[output], raw[output]).get(name, float("nan"))
    higher = t.is_higher_better(name)
    return float(value), higher


def _fingerprints(config: Config, splits: dict[str, pd.DataFrame], stream: ParquetStream | None = None
                  ) -> dict[str, str]:
    """Digests of what every process of a distributed run must share: the config and each split's rows (and the
    streamed training file's row groups and schema)."""
    def rows(frame: pd.DataFrame) -> str:
        try:
            hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
        except TypeError:  # unhashable cells (lists): compare their text
            hashed = pd.util.hash_pandas_object(frame.astype(str), index=True).to_numpy()
        return f"{len(frame)}:{distributed.digest(list(frame.columns))}:{hashlib.sha256(hashed.tobytes()).hexdigest()}"

    data: dict[str, Any] = {name: rows(frame) for name, frame in splits.items()}
    if stream is not None:
        data["streamed train"] = stream.fingerprint()
    return {"config": distributed.digest(config.model_dump(mode="json")), "data": distributed.digest(data)}


def _memory_batches(inputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], order: torch.Tensor,
                    bounds: list[int], parallel: bool) -> Iterator[Batch]:
    """One epoch of in-memory batches: slices of the tensors that the permutation ``order`` picks."""
    for start, end in zip(bounds, bounds[1:]):
        index = order[start:end]
        rows = len(index)
        if parallel:  # this rank's slice of the global batch
            index, rows = distributed.shard(index)
        yield {k: v[index] for k, v in inputs.items()}, {k: v[index] for k, v in targets.items()}, rows, end - start


def _on_device(batches: Iterator[Batch], device: torch.device) -> Iterator[Batch]:
    for inputs, targets, rows, total in batches:
        yield ({k: v.to(device, non_blocking=True) for k, v in inputs.items()},
               {k: v.to(device, non_blocking=True) for k, v in targets.items()}, rows, total)


def _precision(trainer: TrainerConfig, device: torch.device
               ) -> tuple[contextlib.AbstractContextManager, torch.amp.GradScaler | None]:
    """The context the forward pass and loss run in, and fp16's gradient scaler. Validation and metrics run
    outside it, in fp32."""
    if trainer.precision == "fp32":
        return contextlib.nullcontext(), None
    if trainer.precision == "fp16" and device.type != "cuda":
        raise LaminaError("trainer.precision 'fp16' needs a CUDA GPU (it relies on CUDA loss scaling); on CPU use "
                          "'bf16'")
    dtype = torch.bfloat16 if trainer.precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if trainer.precision == "fp16" else None
    # One object for every step: autocast restores the previous state on exit, so it can be entered again.
    return torch.autocast(device.type, dtype=dtype), scaler


def _compiled(net: torch.nn.Module, model: torch.nn.Module, inputs: dict[str, torch.Tensor],
              targets: dict[str, torch.Tensor], losses: dict[str, torch.nn.Module], weights: dict[str, float],
              autocast: contextlib.AbstractContextManager) -> torch.nn.Module:
    """``model`` under torch.compile, tried first on one batch (forward and backward, where compilation happens):
    without a working compiler (no C++ toolchain, an unsupported op) training goes on eagerly after one warning."""
    compiled = torch.compile(model)
    # The trial must leave no trace: no random draws (dropout), no batch-norm statistics, no gradients.
    rng, saved = torch.get_rng_state(), _snapshot(net)
    try:
        with autocast:
            loss = _total_loss(compiled(inputs), targets, losses, weights)
        loss.backward()
    except Exception as e:  # noqa: BLE001 - whatever the compiler stack raises, eager training still works
        reason = " ".join(str(e).split())[:200]
        log.warning("trainer.compile: torch.compile failed (%s: %s); training without it", type(e).__name__, reason)
        compiled = model
    finally:
        net.zero_grad(set_to_none=True)
        net.load_state_dict(saved)
        torch.set_rng_state(rng)
    return compiled


def fit(
    config: Config,
    frames: dict[str, pd.DataFrame],
    sources: dict[str, str] | None = None,
    workdir: Path | None = None,
    resume: bool = False,
    verbose: bool = True,
    stop_after_epoch: int | None = None,
    cache_dir: Path | None = None,
    stream: ParquetStream | None = None,
    clock: Callable[[], float] = time.monotonic,
    preprocessing: dict[str, Any] | None = None,
    calibrate: bool = True,
) -> Fitted:
    """Fit the preprocessor on ``frames['train']``, train the network, tune decoding on validation, score every split.

    ``workdir`` receives a checkpoint every epoch and ``metrics.jsonl``; with ``resume`` training continues from the
    checkpoint there. ``stop_after_epoch`` ends the run early as a crash would (for tests of resume). ``cache_dir``
    keeps what input types derive from files (decoded images) for the run. ``clock`` measures the training time
    that ``trainer.time_limit`` bounds (injectable for tests).

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
    trainer = config.trainer
    seed_everything(trainer.seed)
    device = pick_device(trainer.device)
    parallel = distributed.init(trainer.device)
    if parallel:
        device = distributed.device(trainer.device) or device
        distributed.check_agreement(_fingerprints(config, frames, stream))
    autocast, scaler = _precision(trainer, device)
    if config.data.streaming and stream is None:  # a caller that loaded the splits but opened no stream
        log.warning("data.streaming is on but no stream was given: training on the %d-row fit sample only",
                    len(frames["train"]))
    if stream is not None and len(stream.group_rows) < distributed.world_size():
        raise LaminaError(f"{stream.path}: {len(stream.group_rows)} row group(s) for {distributed.world_size()} "
                          "processes; each process streams its own row groups: write the file with smaller ones")

    checkpoint = load_checkpoint(workdir) if (workdir and resume and distributed.is_main()) else None
    if parallel:  # rank 0's checkpoint, so no rank needs the run folder
        checkpoint = distributed.broadcast(checkpoint)
    if resume and checkpoint is None:
        log.warning("no checkpoint found in %s; training from the start", workdir)
    # Checked before the checkpoint's fitted states are used: they only fit the config they were written with.
    if checkpoint is not None and checkpoint[1]["config"] != config.model_dump(mode="json"):
        raise LaminaError(
            f"{workdir}: the config changed since this checkpoint was written; resume with the same config, "
            "or train without --resume to start over"
        )
    prep = Preprocessor(config, checkpoint[1]["preprocessor"] if checkpoint else preprocessing, cache_dir)
    if checkpoint is None and preprocessing is None:
        prep.fit(frames["train"], sources.get("train"))
    splits = {name: _split(prep, frame, sources.get(name), name) for name, frame in frames.items()}
    if parallel:
        distributed.check_agreement({
            "fitted preprocessing": distributed.digest(prep.state()),
            "rows left after cleaning": distributed.digest({k: len(v) for k, v in splits.items()}),
        })
    train, valid = splits["train"], splits.get("validation")
    if len(train) == 0:
        raise LaminaError("the training split is empty; check data.split.fractions or the train file")
    has_valid = valid is not None and len(valid) > 0
    if not has_valid:
        log.warning("no validation rows: early stopping and threshold tuning are off")

    net = prep.network().to(device)
    losses = {t.name: t.loss().to(device) for t in prep.outputs}
    weights = {t.name: t.options.loss_weight for t in prep.outputs}
    # The fused kernel does the whole update in one pass: a third less time per step for small networks.
    optimizer = torch.optim.AdamW(net.parameters(), lr=trainer.learning_rate, weight_decay=trainer.weight_decay,
                                  fused=device.type in ("cpu", "cuda"))
    shuffle = torch.Generator().manual_seed(trainer.seed)
    n = len(train)
    batch_size = min(trainer.batch_size, n if stream is None else stream.num_rows)
    # A batch of one row breaks batch norm and says little: fold a lone last row into the previous batch.
    bounds = list(range(0, n, batch_size)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        bounds.pop(-2)
    steps_per_epoch = len(bounds) - 1 if stream is None else math.ceil(stream.num_rows / batch_size)
    total_steps = steps_per_epoch * trainer.epochs

    history: list[dict[str, Any]] = []
    best_score, best_epoch, bad_epochs, start_epoch, spent = math.inf, 0, 0, 0, 0.0
    best_state = _snapshot(net)
    if checkpoint is not None:
        tensors, state = checkpoint
        net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        best_state = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}
        load_optimizer(optimizer, tensors, state["param_groups"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(tensors["rng.torch"])
        shuffle.set_state(tensors["rng.shuffle"])
        history, best_score, best_epoch = state["history"], state["best_score"], state["best_epoch"]
        bad_epochs, start_epoch = state["bad_epochs"], state["epoch"]
        spent = state.get("elapsed", 0.0)  # time budget: seconds trained before the resume
        log.info("resuming after epoch %d", start_epoch)
    model = distributed.wrap(net, device) if parallel else net

    # Streamed, the training rows arrive window by window; the in-memory sample stays on the CPU.
    train_inputs = {k: v.to(device) for k, v in train.inputs.items()} if stream is None else {}
    train_targets = {k: v.to(device) for k, v in train.targets.items()} if stream is None else {}
    lengths = sequence_lengths(train.inputs) if stream is None else None
    if trainer.compile:
        rows = min(batch_size, n)
        model = _compiled(net, model, {k: v[:rows].to(device) for k, v in train.inputs.items()},
                          {k: v[:rows].to(device) for k, v in train.targets.items()}, losses, weights, autocast)

    def streamed_tensors(frame: pd.DataFrame) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        # Cleaned as a held-out split is: classes the fit sample never had cannot enter the loss.
        split = _split(prep, frame, sources.get("train"), "streamed train")
        return split.inputs, split.targets

    repeats = RepeatFilter()
    if stream is not None:
        log.addFilter(repeats)
    progress = EpochProgress(trainer.epochs, start_epoch, enabled=verbose and distributed.is_main())
    patience = trainer.early_stopping.patience
    threads_before = torch.get_num_threads()
    if trainer.threads:
        # Small networks gain nothing from a second intra-op thread, and on a busy machine threads waiting on each
        # other can make an epoch many times slower: the knob lets a user pin it.
        torch.set_num_threads(trainer.threads)
    # Time budget: training seconds, counted across resumes; under DDP the slowest rank's, so all stop together.
    budget = Budget(trainer.time_limit, spent, clock, distributed.all_max if parallel else None)
    elapsed = spent
    try:
        for epoch in range(start_epoch + 1, trainer.epochs + 1):
            if budget.expired(elapsed):  # time budget: spent before this epoch (a resumed run)
                break
            started = time.perf_counter()
            net.train()
            step = (epoch - 1) * steps_per_epoch
            running = torch.zeros((), device=device)
            trained = 0
            if stream is None:
                order = torch.randperm(n, generator=shuffle)
                if lengths is not None:  # texts: batches of similar lengths, trimmed by the encoders
                    order = bucket_order(order, lengths, batch_size, shuffle)
                batches = _memory_batches(train_inputs, train_targets, order.to(device), bounds, parallel)
            else:
                batches = _on_device(stream.batches(streamed_tensors, batch_size, shuffle), device)
            for inputs, targets, rows, global_rows in batches:
                elapsed = budget.elapsed()  # time budget
                if budget.expired(elapsed) and step > (epoch - 1) * steps_per_epoch:  # time budget: stop mid-epoch
                    break
                for group in optimizer.param_groups:
                    group["lr"] = trainer.learning_rate * lr_factor(trainer, step, total_steps, elapsed)
                with autocast:
                    out = model(inputs)
                    loss = _total_loss(out, targets, losses, weights)
                # DDP averages the ranks' gradients: weighted so the average is the global batch's mean gradient.
                scaled = loss * (rows * distributed.world_size() / global_rows) if parallel else loss
                update(net, optimizer, scaled, trainer.grad_clip, scaler)
                running += loss.detach() * rows
                trained += rows
                step += 1
            if parallel:
                running = distributed.all_sum(running)
                trained = int(distributed.all_sum(torch.tensor(trained)))
            if trained == 0:
                raise LaminaError(f"{stream.path if stream else 'train'}: no training row left after cleaning; "
                                  "check the warnings above")
            check_finite(running, epoch, trainer.learning_rate)
            record: dict[str, Any] = {"epoch": epoch, "train_loss": float(running) / trained}
            if has_valid:
                raw = run_network(net, valid.inputs)
                record["val_loss"] = _val_loss(prep, valid, raw, losses, device)
                value, higher = _stopping_value(prep, config, valid, raw, record["val_loss"])
                if trainer.early_stopping.metric != "loss":
                    record[f"val_{trainer.early_stopping.metric}"] = value
                score = -value if higher else value
            else:
                score = record["train_loss"]
            record["lr"] = optimizer.param_groups[0]["lr"]
            record["seconds"] = time.perf_counter() - started
            if parallel:  # rank 0's numbers, so every rank stops at the same epoch
                record, score = distributed.broadcast((record, score))
            history.append(record)
            if not has_valid:
                # Nothing held out to choose an epoch by: the model is the last epoch's (live weights, no copy).
                best_score, best_epoch, best_state = score, epoch, net.state_dict()
            elif score < best_score:
                best_score, best_epoch, bad_epochs = score, epoch, 0
                best_state = _snapshot(net)
            else:
                bad_epochs += 1
            progress.update(record)
            elapsed = budget.elapsed()  # time budget
            if workdir and distributed.is_main():
                _save(workdir, net, best_state, optimizer, shuffle, prep, history, epoch, best_score, best_epoch, bad_epochs,
                      scaler, elapsed=elapsed)
            if budget.expired(elapsed):  # time budget: the schedule has ended; the best epoch's weights are kept
                log.info("stopping at epoch %d: trainer.time_limit (%s) reached; best epoch %d", epoch,
                         format_duration(trainer.time_limit), best_epoch)
                break
            if has_valid and patience and bad_epochs >= patience:
                log.info("early stopping at epoch %d: no improvement for %d epochs; best epoch %d", epoch, patience, best_epoch)
                break
            if stop_after_epoch is not None and epoch >= stop_after_epoch:
                raise KeyboardInterrupt
    finally:
        progress.close()
        torch.set_num_threads(threads_before)
        log.removeFilter(repeats)
        if repeats.dropped:
            log.info("%d repeated warning(s) from streamed row groups not shown", repeats.dropped)

    net.load_state_dict(best_state)
    if parallel:
        distributed.broadcast_tensors(net.state_dict())
    net.eval()
    if has_valid and calibrate:
        raw = run_network(net, valid.inputs)
        for t in prep.outputs:
            t.calibrate(raw[t.name], valid.frame[t.name])
    predictor = Predictor(prep, net.cpu())
    # The splits' tensors are already made: scoring them again from the frames would decode and tokenize twice.
    metrics = {name: predictor.score(*_scored_rows(prep, name, split, trainer.seed)) for name, split in splits.items()
               if len(split)}
    predictor.info["metrics"] = distributed.broadcast(metrics) if parallel else metrics
    prep.set_cache_dir(None)  # the run's cache goes with the run; later predictions decode into memory
    predictor.info["best_epoch"] = best_epoch
    predictor.info["epochs_run"] = len(history)
    return Fitted(predictor, history, best_epoch)


def _scored_rows(prep: Preprocessor, name: str, split: Split, seed: int) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """The rows a split is scored on, without teacher-forcing inputs. A training split with a text output is scored
    on a seeded sample of ``TRAIN_GENERATE`` rows: beam search over every training row would cost more than the
    training did; the metrics' ``rows`` says how many were scored."""
    inputs = without_teacher(split.inputs)
    if name != "train" or len(split) <= TRAIN_GENERATE or not any(t.sequence for t in prep.outputs):
        return split.frame, inputs
    index = np.sort(np.random.default_rng(seed).choice(len(split), TRAIN_GENERATE, replace=False))
    return split.frame.iloc[index], {k: v[torch.from_numpy(index)] for k, v in inputs.items()}


def _save(workdir: Path, net: Network, best_state: dict, optimizer: torch.optim.Optimizer, shuffle: torch.Generator,
          prep: Preprocessor, history: list, epoch: int, best_score: float, best_epoch: int, bad_epochs: int,
          scaler: torch.amp.GradScaler | None = None, elapsed: float = 0.0) -> None:
    optim_tensors, optim_state = optimizer_tensors(optimizer)
    tensors = {
        **{f"model.{k}": v for k, v in net.state_dict().items()},
        **{f"best.{k}": v for k, v in best_state.items()},
        **optim_tensors,
        "rng.torch": torch.get_rng_state(),
        "rng.shuffle": shuffle.get_state(),
    }
    state = {
        "epoch": epoch, "history": history, "best_score": best_score, "best_epoch": best_epoch,
        "bad_epochs": bad_epochs, "preprocessor": prep.state(), "config": prep.config.model_dump(mode="json"),
        "elapsed": elapsed, **optim_state,
    }
    if scaler is not None:  # fp16's loss scale, which it has grown or shrunk step by step
        state["scaler"] = scaler.state_dict()
    save_checkpoint(workdir, tensors, state)
    # Rewritten whole from the history, so after a resume it holds each epoch exactly once.
    text = "".join(json.dumps(record) + "\n" for record in history)
    write_atomic(workdir / METRICS_LOG, lambda p: p.write_text(text, encoding="utf-8"))
