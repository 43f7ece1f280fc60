"""A training run, for every task: config and data in, a model directory out.

``runs/<name>.incomplete/`` holds the checkpoints, the metrics log and ``train.log`` while training; when training
ends the model files are written there and ``store.publish`` renames the folder to ``runs/<name>`` (``<name>-2``,
... if taken), so a model directory only ever appears whole. The faces (the report) come after, from the caller.

>>> model = lamina.train("examples/breast_cancer/config.yaml")    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lamina import distributed
from lamina.checkpoint import STATE, TENSORS
from lamina.config import Config, dump_config, load_config, validate_config
from lamina.data.load import load_splits, open_stream, resolve
from lamina.data.read import read_table
from lamina.errors import LaminaError
from lamina.folds import clean as clean_folds
from lamina.folds import fit_auto
from lamina.logs import quiet, tidy
from lamina.ranking.fit import fit_recommender
from lamina.store import Model, check_destination, publish, write_model

CACHE, RUN_LOG = "cache", "train.log"  # in the run's folder: decoded inputs while training; warnings
# A task's training once its data is read: (run folder, resume, verbose, cache folder) -> the trained model.
Fit = Callable[[Path, bool, bool, Path], Model]


@dataclass
class Trained:
    """A finished run: the model (its ``info["run_dir"]`` the published directory) and the splits it saw."""

    model: Model
    frames: dict[str, pd.DataFrame] | None = None


def as_config(config: str | os.PathLike | dict[str, Any] | Config) -> tuple[Config, Path, str]:
    """A config from a file, a dict or a Config, with the folder its relative paths start from and a run name."""
    if isinstance(config, Config):
        return config, Path.cwd(), config.name or "model"
    if isinstance(config, dict):
        parsed = validate_config(config)
        return parsed, Path.cwd(), parsed.name or "model"
    path = Path(config)
    parsed = load_config(path)
    return parsed, path.resolve().parent, parsed.name or path.stem


def free_name(folder: Path, name: str) -> Path:
    candidate, n = folder / name, 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{name}-{n}"
    return candidate


def incomplete_dir(output_dir: Path, name: str) -> Path:
    return output_dir / f"{name}.incomplete"


def _supervised(config: Config, base_dir: Path, data: pd.DataFrame | None) -> tuple[Fit, dict[str, pd.DataFrame]]:
    frames, sources = load_splits(config, base_dir, data)
    stream = open_stream(config, base_dir) if config.data.streaming else None

    def run(workdir: Path, resume: bool, verbose: bool, cache: Path) -> Model:
        # one network, or k cross-fitted ones when the training split is small (trainer.folds, lamina.folds)
        return fit_auto(config, frames, sources, workdir=workdir, resume=resume, verbose=verbose, cache_dir=cache,
                        stream=stream).predictor

    return run, frames


def _recommendation(config: Config, base_dir: Path, data: pd.DataFrame | None) -> tuple[Fit, None]:
    if data is not None:
        frame, source = read_table(data), "data"
    else:
        if not config.data.path:
            raise LaminaError("data.path is not set in the config; a recommendation reads one interaction log "
                              "(the split is per user, so data.train/validation/test are not used)")
        source = str(resolve(config.data.path, base_dir))
        frame = read_table(source, config.data.format)

    def run(workdir: Path, resume: bool, verbose: bool, cache: Path) -> Model:
        return fit_recommender(config, frame, source, workdir=workdir, resume=resume, verbose=verbose)

    return run, None


def _anomaly(config: Config, base_dir: Path, data: pd.DataFrame | None) -> tuple[Fit, dict[str, pd.DataFrame]]:
    from lamina.anomaly.fit import fit_anomaly

    frames, sources = load_splits(config, base_dir, data)

    def run(workdir: Path, resume: bool, verbose: bool, cache: Path) -> Model:
        return fit_anomaly(config, frames, sources, workdir=workdir, resume=resume, verbose=verbose)

    return run, frames


TASKS = {"prediction": _supervised, "recommendation": _recommendation, "anomaly": _anomaly}


def run(
    config: str | os.PathLike | dict[str, Any] | Config,
    data: pd.DataFrame | None = None,
    output_dir: str | os.PathLike = "runs",
    output: str | os.PathLike | None = None,
    resume: bool = False,
    verbose: bool = True,
) -> Trained:
    """Train the model a config describes and publish its model directory; see ``train``."""
    parsed, base_dir, name = as_config(config)
    # Where the model goes is checked before the work starts, not found out after the whole training.
    check_destination(Path(output) if output else Path(output_dir))
    fit_task, frames = TASKS[parsed.task](parsed, base_dir, data)
    out_root = Path(output).parent if output else Path(output_dir)
    workdir = incomplete_dir(out_root, Path(output).name if output else name)
    distributed.init(parsed.trainer.device)
    main = distributed.is_main()
    if main:
        if workdir.exists() and not resume:
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.yaml").write_text(dump_config(parsed), encoding="utf-8")
    distributed.barrier()  # the run folder is ready before any rank writes its cache in it
    with _run_log(workdir, main):
        try:
            # Each rank decodes its own copy of file inputs (images): no two processes write one cache file.
            cache = workdir / CACHE if main else workdir / CACHE / f"rank{distributed.rank()}"
            model = fit_task(workdir, resume, verbose and main, cache)
        except LaminaError:
            # Bad input found before the first checkpoint: nothing to resume, so leave no half-made run folder.
            if main and not (workdir / STATE).exists():
                shutil.rmtree(workdir, ignore_errors=True)
            raise
    if not main:  # rank 0 writes the model directory; the others return once it is in place
        model.info["run_dir"] = distributed.broadcast(None)
        distributed.barrier()
        return Trained(model, frames)
    destination = _publish(model, workdir, Path(output) if output else free_name(out_root, name))
    if distributed.active():
        distributed.broadcast(str(destination))
        distributed.barrier()
    return Trained(model, frames)


def train(
    config: str | os.PathLike | dict[str, Any] | Config,
    data: pd.DataFrame | None = None,
    output_dir: str | os.PathLike = "runs",
    output: str | os.PathLike | None = None,
    resume: bool = False,
    verbose: bool = True,
) -> Model:
    """Train the model a config describes and write its model directory; returns the trained model (a
    ``Predictor``, or a ``Recommender`` for ``task: recommendation``).

    ``data`` (a DataFrame) replaces the config's data files. ``output`` is the model directory (replaced if it
    exists); by default ``<output_dir>/<name>``, with a numbered suffix if taken. ``lamina.train`` also writes
    ``report.html`` (``lamina.api``).

    Under torchrun every process calls this; only rank 0 writes the run folder and the model directory, and every
    rank returns the same model once the directory is in place.
    """
    return run(config, data, output_dir, output, resume, verbose).model


def _publish(model: Model, workdir: Path, destination: Path) -> Path:
    """The run folder becomes the model directory: checkpoints and cache out, model files in, renamed whole."""
    for leftover in (TENSORS, STATE):
        (workdir / leftover).unlink(missing_ok=True)
    shutil.rmtree(workdir / CACHE, ignore_errors=True)  # decoded images: big, and re-derivable from the data
    clean_folds(workdir)
    write_model(model, workdir)
    publish(workdir, destination)
    model.info["run_dir"] = str(destination)
    return destination


@contextlib.contextmanager
def _run_log(workdir: Path, main: bool) -> Iterator[None]:
    """The run's log: warnings (e.g. unreadable images left out) stay with the model directory. Other ranks would
    repeat rank 0's warnings: they report errors only."""
    logger = logging.getLogger("lamina")
    handler = tidy(logging.FileHandler(workdir / RUN_LOG, encoding="utf-8", delay=True))  # created on the first record
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
    quieted = contextlib.ExitStack()
    if main:
        logger.addHandler(handler)
    else:
        quieted.enter_context(quiet())  # the other ranks report errors only (a context-local threshold)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        quieted.close()
