"""One tune worker: Optuna's ``study.optimize`` over trials that each train one network with the one loop.

A trial reports every epoch's validation score to Optuna (``fit``'s ``on_epoch``), which prunes the trials that
fall behind; its training is bounded by ``trainer.time_limit`` set to the time left before the search ends, and a
trial the deadline stopped counts as pruned (it did not finish, so its config is not offered as the best).
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from lamina.config import Config, TuneParam, load_config, validate_config
from lamina.data.load import load_splits
from lamina.errors import LaminaError
from lamina.folds import fit_folds, folds_for
from lamina.logs import quiet
from lamina.preprocessor import Preprocessor
from lamina.training.supervised import Fitted, fit
from lamina.tune.clock import Deadline, trial_seconds
from lamina.tune.keep import keep, leads
from lamina.tune.output import announcer
from lamina.tune.space import check_space, suggest, trial_base, with_values

HEARTBEAT, GRACE = 5, 15  # seconds: a trial whose process died is marked failed GRACE seconds after its last beat


@dataclass
class Job:
    """What a worker is told: the config, the study, the budget."""

    config: str
    storage: str
    study: str
    folder: str  # the study folder: trials' models are kept there
    start: float
    total: float
    report: float | None = None
    worker: int = 0
    threads: int | None = None
    sampler: str = "tpe"  # or "random": the baseline a benchmark compares TPE with


def storage(url: str) -> optuna.storages.RDBStorage:
    """The study's database; SQLite waits for a lock instead of failing when processes write at once."""
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat is "experimental"
        return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT,
                                          grace_period=GRACE)


def sampler(seed: int, worker: int, kind: str = "tpe") -> optuna.samplers.BaseSampler:
    # Each worker its own seed; constant_liar keeps parallel workers from proposing the same point.
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed + worker)
    return optuna.samplers.TPESampler(seed=seed + worker, n_startup_trials=5, constant_liar=True)


def pruner() -> optuna.pruners.MedianPruner:
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=3)


def objective_key(config: Config) -> tuple[str, str]:
    """The epoch record's key a trial is scored by (the early-stopping metric, on validation) and its direction."""
    metric = config.trainer.early_stopping.metric
    if metric == "loss":
        return "val_loss", "minimize"
    output, _, name = metric.partition(".")
    column = next(t for t in Preprocessor(config).outputs if t.name == output)
    return f"val_{metric}", "maximize" if column.is_higher_better(name) else "minimize"


def _reporter(trial: optuna.Trial, key: str, clock: Deadline, until: float) -> Callable[[int, dict[str, Any]], None]:
    """``on_epoch(fold, record)``: fold 1's epochs feed the pruner (every trial's first network, comparable step by
    step); every fold's epochs are kept for the score and stop the trial at the deadline."""
    records: dict[int, dict[int, dict[str, Any]]] = {}

    def on_epoch(fold: int, record: dict[str, Any]) -> None:
        records.setdefault(fold, {})[record["epoch"]] = record
        if fold == 1:
            trial.report(float(record[key]), record["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {record['epoch']}")
        if clock.now() >= until:
            trial.set_user_attr("stopped", "deadline")
            raise optuna.TrialPruned("stopped at the deadline")

    on_epoch.records = records  # type: ignore[attr-defined]
    return on_epoch


def _train(config: Config, frames: dict[str, pd.DataFrame], sources: dict[str, str], k: int,
           on_epoch: Callable[[int, dict[str, Any]], None], key: str) -> tuple[Fitted, float, dict[str, Any]]:
    """Train a trial's model as ``lamina train`` would (one network, or ``k`` cross-fitted ones) and score it: the
    validation ``key`` at the best epoch, averaged over the folds when cross-fitted. On a few hundred rows one
    validation split of a few dozen rows rewards the config that fits those rows (docs/benchmarks.md, 'Tuning');
    the mean over k held-out folds covers every training row."""
    if k == 1:
        fitted = fit(config, frames, sources, verbose=False, on_epoch=lambda record: on_epoch(1, record))
        best = next(r for r in fitted.history if r["epoch"] == fitted.best_epoch)
        return fitted, float(best[key]), {"best_epoch": fitted.best_epoch, "epochs": len(fitted.history),
                                          "train_seconds": sum(r["seconds"] for r in fitted.history)}
    fitted = fit_folds(config, frames, k, sources, verbose=False, on_epoch=on_epoch)
    records: dict[int, dict[int, dict[str, Any]]] = on_epoch.records  # type: ignore[attr-defined]
    plan = fitted.predictor.info["folds"]
    best = [records[i + 1][epoch] for i, epoch in enumerate(plan["best_epochs"])]
    seconds = sum(r["seconds"] for fold in records.values() for r in fold.values())
    return fitted, float(np.mean([r[key] for r in best])), {
        "best_epoch": int(np.median(plan["best_epochs"])), "epochs": int(np.median(plan["epochs_run"])),
        "folds": k, "train_seconds": seconds}


def make_objective(config: Config, space: dict[str, TuneParam], frames: dict[str, pd.DataFrame],
                   sources: dict[str, str], clock: Deadline, job: Job) -> Callable[[optuna.Trial], float]:
    base, (key, _) = trial_base(config), objective_key(config)
    # Trials train what `lamina train` of the config trains: cross-fitted on small data, so a trial is scored
    # out of fold and the tuned best is the model the user gets.
    k = folds_for(config, len(frames["train"]) + len(frames.get("validation", ())))

    def objective(trial: optuna.Trial) -> float:
        raw = with_values(base, suggest(trial, space))
        until = clock.search_end()
        left = clock.left(until)
        if left <= 0:
            trial.set_user_attr("stopped", "deadline")
            raise optuna.TrialPruned("no time left")
        trainer = raw["trainer"]
        trainer["folds"] = k
        # k networks share the time left; a tenth of it is kept for what each fold does besides its epochs
        # (scoring, the out-of-fold ensemble), so a trial cut short by the budget still ends before the search.
        share = left / k if k == 1 else 0.9 * left / k
        trainer["time_limit"] = min(share, trainer["time_limit"] or math.inf)
        trainer["threads"] = trainer["threads"] or job.threads
        try:
            with quiet():
                fitted, value, facts = _train(validate_config(raw), frames, sources, k,
                                              _reporter(trial, key, clock, until), key)
        except LaminaError as e:  # this point of the space does not train (e.g. the loss diverged): a failed trial
            trial.set_user_attr("error", str(e))
            return math.nan
        if clock.now() >= until:
            trial.set_user_attr("stopped", "deadline")
            raise optuna.TrialPruned("stopped at the deadline")
        for name, fact in facts.items():
            trial.set_user_attr(name, fact)
        if leads(trial, value):
            keep(Path(job.folder), trial, fitted)
        return value

    return objective


def _stopper(clock: Deadline) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    def callback(study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
        if not clock.may_start(trial_seconds(study)):
            study.stop()

    return callback


def _wait_for_queue(study: optuna.Study, clock: Deadline) -> None:
    """Until the first worker has taken the queued trial (the config as written): SQLite cannot lock the row, and
    two workers that took it at once would both run it."""
    while study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)) and clock.now() < clock.end:
        time.sleep(0.2)


def work(job: Job, frames: dict[str, pd.DataFrame] | None = None, sources: dict[str, str] | None = None,
         announce: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None) -> None:
    """Run trials of the study until the budget says no more fit (the caller has created the study)."""
    config = load_config(job.config)
    space = check_space(config, job.config)
    if frames is None:
        frames, sources = load_splits(config, Path(job.config).resolve().parent)
    clock = Deadline(job.start, job.total, report=job.report)
    study = optuna.load_study(study_name=job.study, storage=storage(job.storage),
                              sampler=sampler(config.trainer.seed, job.worker, job.sampler), pruner=pruner())
    if job.worker:
        _wait_for_queue(study, clock)
    if not clock.may_start(trial_seconds(study)):
        return
    callbacks = [_stopper(clock)] + ([announce] if announce else [])
    objective = make_objective(config, space, frames, sources or {}, clock, job)
    study.optimize(objective, callbacks=callbacks, gc_after_trial=False)


def worker(job: Job, frames: dict[str, pd.DataFrame] | None = None, sources: dict[str, str] | None = None) -> None:
    """A worker process of ``lamina tune --jobs N``: bad input is one line on stderr and exit status 2."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        work(job, frames, sources, announcer(objective_key(load_config(job.config))[0]))
    except LaminaError as e:
        print(f"error: {e}", flush=True, file=sys.stderr)
        raise SystemExit(2) from None
