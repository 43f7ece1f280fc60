"""The model directory of every task: ``lamina.json`` (format, task, config, fitted states, metrics, versions) and
``weights.safetensors``. One writer (``write_model``, ``publish``, ``save``) and one loader (``load``), which
dispatches on the task recorded in ``lamina.json``; a task's model says what it stores (``model_files``) and is
rebuilt from it (``from_files``).

Nothing here unpickles: a model directory from a stranger is JSON and raw tensors, and cannot run code.
A directory is written beside its destination and renamed into place, so a crash never leaves half a model.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lamina.errors import LaminaError
from lamina.predictor import Predictor
from lamina.ranking.model import Recommender

FORMAT, FORMAT_VERSION = "lamina-model", 1
INFO, WEIGHTS = "lamina.json", "weights.safetensors"
Model = Predictor | Recommender
MODELS: dict[str, type[Predictor] | type[Recommender]] = {"prediction": Predictor, "recommendation": Recommender}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("lamina", "torch", "numpy", "pandas", "scikit-learn", "safetensors"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def write_model(model: Model, folder: Path) -> None:
    """Write the model files into an existing folder (the caller makes the folder appear atomically)."""
    stored, tensors = model.model_files()
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": model.task,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        **stored,
    }
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(folder / WEIGHTS))
    (folder / INFO).write_text(json.dumps(info, indent=2, default=float), encoding="utf-8")


def publish(staging: Path, destination: Path) -> None:
    """Rename a finished staging folder to its destination, replacing an older model there."""
    if destination.exists():
        old = destination.with_name(f".{destination.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(destination, old)
        os.replace(staging, destination)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, destination)


def save(model: Model, path: str | os.PathLike) -> Path:
    """Save a model directory atomically. ``lamina.load(path)`` reads it back."""
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(f".{destination.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    write_model(model, staging)
    publish(staging, destination)
    return destination


def read_info(folder: Path) -> dict[str, Any]:
    if not folder.exists():
        raise LaminaError(f"{folder}: no such model directory; train one with `lamina train config.yaml`")
    if not folder.is_dir():
        raise LaminaError(f"{folder}: not a directory; give the model directory that `lamina train` wrote")
    if not (folder / INFO).is_file():
        partial = " (training did not finish: resume it with `lamina train CONFIG --resume`)" if any(folder.glob("checkpoint.*")) else ""
        raise LaminaError(f"{folder}: not a Lamina model directory: {INFO} is missing{partial}")
    try:
        info = json.loads((folder / INFO).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LaminaError(f"{folder / INFO}: corrupted ({e}); retrain or restore the model directory") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise LaminaError(f"{folder / INFO}: not a Lamina model file (no 'format: {FORMAT}')")
    if info.get("format_version", 0) > FORMAT_VERSION:
        raise LaminaError(
            f"{folder}: written by a newer Lamina (format {info['format_version']}); upgrade Lamina to read it"
        )
    return info


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``folder/weights.safetensors``, with one-line errors for a missing or corrupted file."""
    try:
        return load_file(str(folder / WEIGHTS))
    except FileNotFoundError:
        raise LaminaError(f"{folder}: {WEIGHTS} is missing; the model directory is incomplete") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise LaminaError(f"{folder / WEIGHTS}: corrupted ({e}); retrain or restore the model directory") from None


def check_weights(folder: Path, weights: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                  consistent: bool = True) -> None:
    """Refuse weights whose names or shapes differ from the network ``lamina.json`` describes."""
    if not consistent or set(weights) != set(expected) or any(weights[k].shape != expected[k].shape for k in expected):
        raise LaminaError(f"{folder / WEIGHTS}: the weights do not match {INFO} (another model's file?); retrain")


def load(path: str | os.PathLike) -> Model:
    """Load a model directory written by ``lamina train`` or ``save``, of any task.

    >>> model = lamina.load("runs/breast_cancer")   # doctest: +SKIP
    """
    folder = Path(path)
    info = read_info(folder)
    task = info.get("task", "prediction")  # written by every version that had a second task
    if task not in MODELS:
        raise LaminaError(f"{folder / INFO}: a model of task {task!r}, which this Lamina does not know; upgrade Lamina")
    tensors = read_weights(folder)

    def check(weights: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], consistent: bool = True) -> None:
        check_weights(folder, weights, expected, consistent)

    try:
        model = MODELS[task].from_files(str(folder / INFO), info, tensors, check)
    except (KeyError, TypeError, ValueError) as e:
        raise LaminaError(f"{folder / INFO}: corrupted or incomplete ({type(e).__name__}: {e}); retrain the model") from None
    model.info["run_dir"] = str(folder)
    return model
