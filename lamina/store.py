"""The model directory of every task: ``lamina.json`` (format, task, config, fitted states, metrics, versions) and
``weights.safetensors``. One writer (``write_model``, ``publish``, ``save``) and one loader (``load``), which
dispatches on the task recorded in ``lamina.json``; a task's model says what it stores (``model_files``) and is
rebuilt from it (``from_files``).

Nothing here unpickles: a model directory from a stranger is JSON and raw tensors, and cannot run code.
A directory is written beside its destination and renamed into place, so a crash never leaves half a model.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import shutil
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lamina.errors import LaminaError
from lamina.anomaly.model import AnomalyModel
from lamina.predictor import Predictor
from lamina.ranking.model import Recommender
from lamina.schema import ModelInfo, check, check_shapes, read_json

FORMAT, FORMAT_VERSION = "lamina-model", 1
INFO, WEIGHTS = "lamina.json", "weights.safetensors"
Model = Predictor | Recommender | AnomalyModel
MODELS: dict[str, type[Predictor] | type[Recommender] | type[AnomalyModel]] = {
    "prediction": Predictor, "recommendation": Recommender, "anomaly": AnomalyModel}


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


def aside(destination: Path) -> Path:
    """Where ``publish`` moves the model it replaces (and where an interrupted publish may have left it)."""
    return destination.with_name(f".{destination.name}.old")


def recover(destination: Path) -> None:
    """Finish what an interrupted ``publish`` left: put the aside model back if the name is empty, else delete it."""
    old = aside(destination)
    if not old.is_dir():
        return
    if destination.exists() or not (old / INFO).is_file():
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(old, destination)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the system has no such call."""
    if not sys.platform.startswith("linux"):
        return False
    rename = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if rename is None:
        return False
    at_cwd, exchange = -100, 2
    if rename(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # an older kernel, or a file system without exchange: rename aside, then in
    raise OSError(code, os.strerror(code), str(b))


def publish(staging: Path, destination: Path) -> None:
    """Put the finished folder ``staging`` at ``destination``, replacing an older model there.

    The new folder is complete before the old one moves. Where the system swaps two directories atomically, a kill
    at any instant leaves the old model or the new one under the name; elsewhere the old one is renamed aside
    first, and a kill between the two renames leaves it beside the name, where ``recover`` (run by the next
    publish and by ``load``) puts it back.
    """
    recover(destination)
    if not destination.exists():
        os.replace(staging, destination)
        return
    old = aside(destination)
    if _exchange(staging, destination):
        os.replace(staging, old)  # staging now holds the old model: one name for leftovers, whichever path ran
    else:
        os.replace(destination, old)
        os.replace(staging, destination)
    shutil.rmtree(old, ignore_errors=True)


def check_destination(destination: Path) -> None:
    """Refuse, before any work, a model directory path that cannot become one: a file, or under a file."""
    if destination.exists() and not destination.is_dir():
        raise LaminaError(f"{destination}: is a file, not a folder; remove it or choose another output path")
    parent = next((p for p in destination.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise LaminaError(f"{destination}: {parent} is a file, not a folder; choose another output path")


def save(model: Model, path: str | os.PathLike) -> Path:
    """Save a model directory atomically. ``lamina.load(path)`` reads it back."""
    destination = Path(path)
    check_destination(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(f".{destination.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    write_model(model, staging)
    publish(staging, destination)
    return destination


FIX = "retrain or restore the model directory"


def read_info(folder: Path) -> dict[str, Any]:
    recover(folder)
    if not folder.exists():
        raise LaminaError(f"{folder}: no such model directory; train one with `lamina train config.yaml`")
    if not folder.is_dir():
        raise LaminaError(f"{folder}: not a directory; give the model directory that `lamina train` wrote")
    if not (folder / INFO).is_file():
        partial = " (training did not finish: resume it with `lamina train CONFIG --resume`)" if any(folder.glob("checkpoint.*")) else ""
        raise LaminaError(f"{folder}: not a Lamina model directory: {INFO} is missing{partial}")
    info = read_json(folder / INFO, FIX)
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise LaminaError(f"{folder / INFO}: not a Lamina model file (no 'format: {FORMAT}')")
    version = info.get("format_version", 0)
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise LaminaError(
            f"{folder}: written by a newer Lamina (format {info['format_version']}); upgrade Lamina to read it"
        )
    check(ModelInfo, info, folder / INFO)
    return info


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``folder/weights.safetensors``, with one-line errors for a missing or corrupted file."""
    try:
        return load_file(str(folder / WEIGHTS))
    except FileNotFoundError:
        raise LaminaError(f"{folder}: {WEIGHTS} is missing; the model directory is incomplete") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise LaminaError(f"{folder / WEIGHTS}: corrupted ({e}); {FIX}") from None


def check_weights(folder: Path, weights: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                  consistent: bool = True) -> None:
    """Refuse weights whose names or shapes differ from the network ``lamina.json`` describes, naming the first
    tensor that differs (``expected`` may be meta tensors: only names and shapes are read)."""
    check_shapes(folder / WEIGHTS, {k: tuple(v.shape) for k, v in weights.items()},
                 {k: tuple(v.shape) for k, v in expected.items()}, f"{FIX} (another model's file?)")
    if not consistent:
        raise LaminaError(f"{folder / WEIGHTS}: the weights do not match {INFO} (another model's file?); retrain")


def load(path: str | os.PathLike) -> Model:
    """Load a model directory written by ``lamina train`` or ``save``, of any task.

    ``lamina.json`` is checked against its schema, and the network it describes is planned on the meta device and
    checked against the weights file's tensors before it is built, so a file declaring a huge size allocates nothing.

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
