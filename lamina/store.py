"""The model directory: ``lamina.json`` (config, fitted states, metrics, versions) and ``weights.safetensors``.

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

from lamina.config import validate_config
from lamina.ensemble import Ensemble
from lamina.errors import LaminaError
from lamina.predictor import Predictor
from lamina.preprocessor import Preprocessor

FORMAT, FORMAT_VERSION = "lamina-model", 1
INFO, WEIGHTS = "lamina.json", "weights.safetensors"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("lamina", "torch", "numpy", "pandas", "scikit-learn", "safetensors"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def write_model(predictor: Predictor, folder: Path) -> None:
    """Write the model files into an existing folder (the caller makes the folder appear atomically)."""
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "config": predictor.config.model_dump(mode="json"),
        "preprocessor": predictor.preprocessor.state(),
        **{k: v for k, v in predictor.info.items() if k not in ("run_dir",)},
    }
    state = {k: v.detach().cpu().contiguous() for k, v in predictor.network.state_dict().items()}
    save_file(state, str(folder / WEIGHTS))
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


def save(predictor: Predictor, path: str | os.PathLike) -> Path:
    """Save a model directory atomically. ``lamina.load(path)`` reads it back."""
    if getattr(predictor, "task", None) == "recommendation":  # lamina.recommend.model.Recommender
        return predictor.save(path)  # type: ignore[attr-defined]
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(f".{destination.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    write_model(predictor, staging)
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


def load(path: str | os.PathLike) -> Predictor:
    """Load a model directory written by ``lamina train`` or ``save``.

    >>> model = lamina.load("runs/breast_cancer")   # doctest: +SKIP
    """
    folder = Path(path)
    info = read_info(folder)
    if info.get("task") == "recommendation":  # a two-tower recommender: lamina.recommend.model.Recommender
        from lamina.recommend.model import load_recommender

        return load_recommender(folder, info)  # type: ignore[return-value]
    try:
        config = validate_config(info["config"], source=str(folder / INFO))
        preprocessor = Preprocessor(config, info["preprocessor"])
        unfitted = [t.name for t in [*preprocessor.inputs, *preprocessor.outputs] if not t.state]
        if unfitted:
            raise LaminaError(f"{folder / INFO}: no fitted state for column {unfitted[0]!r}; the file is incomplete, "
                              "retrain or restore the model directory")
        network = preprocessor.network()
        if info.get("folds"):  # cross-fitted: k networks averaged (lamina.ensemble)
            k = int(info["folds"]["k"])
            network = Ensemble([preprocessor.network() for _ in range(k)], preprocessor.outputs)
    except (KeyError, TypeError, ValueError) as e:
        raise LaminaError(f"{folder / INFO}: corrupted or incomplete ({type(e).__name__}: {e}); retrain the model") from None
    weights = read_weights(folder)
    check_weights(folder, weights, network.state_dict())
    network.load_state_dict(weights)
    meta = {k: v for k, v in info.items() if k not in ("config", "preprocessor")}
    meta["run_dir"] = str(folder)
    return Predictor(preprocessor, network, meta)
