"""``lamina.train``: a training run (``lamina.run``), then its ``report.html``. The report is a face, so it is
written here, above the run, as ``lamina train`` on the command line does."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from lamina import distributed
from lamina.config import Config
from lamina.report import write_report
from lamina.run import Trained, run
from lamina.store import Model


def train(
    config: str | os.PathLike | dict[str, Any] | Config,
    data: pd.DataFrame | None = None,
    output_dir: str | os.PathLike = "runs",
    output: str | os.PathLike | None = None,
    resume: bool = False,
    verbose: bool = True,
    report: bool = True,
) -> Model:
    """Train the model a config describes and write its model directory (``lamina.run.train``); with ``report``,
    also its ``report.html`` (a prediction or anomaly model's; a recommender has none yet). Returns the trained model."""
    trained = run(config, data, output_dir, output, resume, verbose)
    if report:
        write_run_report(trained)
    return trained.model


def write_run_report(trained: Trained) -> None:
    """report.html for a finished run, on the main process; a failure only warns, the model directory is in place."""
    model = trained.model
    if not model.reports or not distributed.is_main():  # each task's model says whether it has a report
        return
    try:
        write_report(Path(model.info["run_dir"]), predictor=model, frames=trained.frames)
    except Exception as e:  # noqa: BLE001
        logging.getLogger("lamina").warning("report.html not written: %s: %s", type(e).__name__, e)
