"""A training run: config and data in, a model directory out.

``runs/<name>.incomplete/`` holds the checkpoints and the metrics log while training; when training ends the model
files are written there and the folder is renamed to ``runs/<name>`` (``<name>-2``, ... if taken), so a model
directory only ever appears whole.

>>> model = lamina.train("examples/breast_cancer/config.yaml")    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from lamina import distributed
from lamina.checkpoint import STATE, TENSORS
from lamina.config import Config, dump_config, load_config, validate_config
from lamina.data.load import load_splits, open_stream
from lamina.errors import LaminaError
from lamina.logs import quiet, tidy
from lamina.predictor import Predictor
from lamina.folds import clean as clean_folds
from lamina.folds import fit_auto
from lamina.store import check_destination, publish, write_model

CACHE, RUN_LOG = "cache", "train.log"  # in the run's folder: decoded inputs while training; warnings


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


def train(
    config: str | os.PathLike | dict[str, Any] | Config,
    data: pd.DataFrame | None = None,
    output_dir: str | os.PathLike = "runs",
    output: str | os.PathLike | None = None,
    resume: bool = False,
    verbose: bool = True,
    report: bool = True,
) -> Predictor:
    """Train the model a config describes and write its model directory; returns the trained model.

    ``data`` (a DataFrame) replaces the config's data files. ``output`` is the model directory (replaced if it
    exists); by default ``<output_dir>/<name>``, with a numbered suffix if taken.

    Under torchrun every process calls this; only rank 0 writes the run folder and the model directory, and every
    rank returns the same model once the directory is in place.
    """
    parsed, base_dir, name = as_config(config)
    # Where the model goes is checked before the work starts, not found out after the whole training.
    check_destination(Path(output) if output else Path(output_dir))
    if parsed.task == "recommendation" and distributed.requested():
        raise LaminaError("recommendation models train in one process for now; run without torchrun / --nproc")
    if parsed.task == "recommendation":  # a ranking model has its own data protocol and batch step
        from lamina.recommend.train import train_recommendation

        return train_recommendation(parsed, base_dir, name, data, output_dir, output, verbose, resume)  # type: ignore[return-value]
    frames, sources = load_splits(parsed, base_dir, data)
    stream = open_stream(parsed, base_dir) if parsed.data.streaming else None
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

    # The run's log: warnings (e.g. unreadable images left out) stay with the model directory. Other ranks would
    # repeat rank 0's warnings: they report errors only.
    logger = logging.getLogger("lamina")
    handler = tidy(logging.FileHandler(workdir / RUN_LOG, encoding="utf-8", delay=True))  # created on the first record
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
    quieted = contextlib.ExitStack()
    if main:
        logger.addHandler(handler)
    else:
        quieted.enter_context(quiet())  # the other ranks report errors only (a context-local threshold)
    try:
        # Each rank decodes its own copy of file inputs (images): no two processes write one cache file.
        cache = workdir / CACHE if main else workdir / CACHE / f"rank{distributed.rank()}"
        # one network, or k cross-fitted ones when the training split is small (trainer.folds, lamina.folds)
        fitted = fit_auto(parsed, frames, sources, workdir=workdir, resume=resume, verbose=verbose and main,
                          cache_dir=cache, stream=stream)
    except LaminaError:
        # Bad input found before the first checkpoint: nothing to resume, so leave no half-made run folder behind.
        if main and not (workdir / STATE).exists():
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()
        quieted.close()

    predictor = fitted.predictor
    if not main:  # rank 0 writes the model directory; the others return once it is in place
        predictor.info["run_dir"] = distributed.broadcast(None)
        distributed.barrier()
        return predictor
    for leftover in (TENSORS, STATE):
        (workdir / leftover).unlink(missing_ok=True)
    shutil.rmtree(workdir / CACHE, ignore_errors=True)  # decoded images: big, and re-derivable from the data
    clean_folds(workdir)
    write_model(predictor, workdir)
    destination = Path(output) if output else free_name(out_root, name)
    publish(workdir, destination)
    predictor.info["run_dir"] = str(destination)
    if distributed.active():
        distributed.broadcast(str(destination))
        distributed.barrier()
    if report:  # report.html: a failure here only warns, the model directory is already in place
        try:
            from lamina.report import write_report

            write_report(destination, predictor=predictor, frames=frames)
        except Exception as e:  # noqa: BLE001
            logging.getLogger("lamina").warning("report.html not written: %s: %s", type(e).__name__, e)
    return predictor
