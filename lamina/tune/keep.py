"""The models of the trials that led the study when they finished, kept in ``<study folder>/trials/<number>``: the
best config's model directory is then the very network the leaderboard scored, not a second training of it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import optuna

from lamina.config import dump_config
from lamina.store import publish, write_model
from lamina.training.supervised import Fitted

TRIALS, MARK = "trials", "tune.json"  # MARK: which study and trial a kept model directory is


def leads(trial: optuna.Trial, value: float) -> bool:
    """Whether ``value`` beats every finished trial of the study (this one is still running)."""
    done = trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return True
    maximize = trial.study.direction == optuna.study.StudyDirection.MAXIMIZE
    best = max(t.value for t in done) if maximize else min(t.value for t in done)  # type: ignore[type-var]
    return value > best if maximize else value < best


def keep(folder: Path, trial: optuna.Trial, fitted: Fitted) -> None:
    """Write the trial's model directory, whole or not at all (written aside, then renamed)."""
    target = folder / TRIALS / str(trial.number)
    staging = target.with_name(f".{trial.number}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write_model(fitted.predictor, staging)
    (staging / "config.yaml").write_text(dump_config(fitted.predictor.config), encoding="utf-8")
    # metrics.jsonl as a training run writes it: the report draws its learning curves from it (a cross-fitted
    # model has k curves and, as after `lamina train`, none)
    if fitted.history:
        lines = "".join(json.dumps(r) + "\n" for r in fitted.history)
        (staging / "metrics.jsonl").write_text(lines, encoding="utf-8")
    mark = {"study": trial.study.study_name, "trial": trial.number}
    (staging / MARK).write_text(json.dumps(mark), encoding="utf-8")
    os.replace(staging, target)


def trial_of(folder: Path) -> int | None:
    """The trial a kept model directory holds (None: not one of a study's)."""
    try:
        return int(json.loads((folder / MARK).read_text(encoding="utf-8"))["trial"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def take(folder: Path, number: int, destination: Path) -> bool:
    """Publish trial ``number``'s kept model at ``destination`` (unless an earlier session did) and drop the
    others; False when this machine has none (the trial ran on another machine of a shared study)."""
    source = folder / TRIALS / str(number)
    found = source.is_dir() or trial_of(destination) == number
    if source.is_dir():
        publish(source, destination)
    shutil.rmtree(folder / TRIALS, ignore_errors=True)
    return found
