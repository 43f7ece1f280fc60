"""Checkpoints of a training run: tensors in safetensors, everything else in JSON, each replaced atomically.

Saved every epoch, so a killed run resumes from its last finished epoch and ends with the same numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lamina.errors import LaminaError
from lamina.schema import CheckpointState, check, read_json, tensor_shapes

TENSORS, STATE = "checkpoint.safetensors", "checkpoint.json"


def write_atomic(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then rename over ``path``: a crash leaves the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state dict into flat tensors and JSON (its param groups)."""
    state = optimizer.state_dict()
    tensors = {
        f"optim.{index}.{key}": value.detach().clone() if torch.is_tensor(value) else torch.tensor(value)
        for index, slots in state["state"].items() for key, value in slots.items()
    }
    return tensors, {"param_groups": state["param_groups"]}


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, slot = key.split(".", 2)
            state.setdefault(int(index), {})[slot] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(folder: Path, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    # Tensors first, then the JSON that names the epoch: a crash between the two leaves the JSON of the previous
    # epoch beside newer tensors, so the epoch is also stored inside the tensor file and checked on load.
    contiguous["epoch"] = torch.tensor(state["epoch"])
    write_atomic(folder / TENSORS, lambda p: save_file(contiguous, str(p)))
    write_atomic(folder / STATE, lambda p: p.write_text(json.dumps(state), encoding="utf-8"))


RESUME_FIX = "delete the folder to train from the start, or restore the file"


def load_checkpoint(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The last checkpoint in ``folder``, or None when there is none; a damaged one is one line naming the file
    and the key (the JSON against its schema, the tensor file's header read before anything is allocated)."""
    if not (folder / STATE).is_file() or not (folder / TENSORS).is_file():
        return None
    state = read_json(folder / STATE, RESUME_FIX)
    check(CheckpointState, state, folder / STATE, fix=RESUME_FIX)
    shapes = tensor_shapes(folder / TENSORS, RESUME_FIX)
    for key in ("epoch", "rng.torch", "rng.shuffle"):
        if key not in shapes:
            raise LaminaError(f"{folder / TENSORS}: tensor {key!r} is missing; {RESUME_FIX}")
    if shapes["epoch"] != ():
        raise LaminaError(f"{folder / TENSORS}: tensor 'epoch' has shape {list(shapes['epoch'])}, not a number; "
                          f"{RESUME_FIX}")
    try:
        tensors = load_file(str(folder / TENSORS))
    except (SafetensorError, OSError, ValueError) as e:
        raise LaminaError(f"{folder / TENSORS}: corrupted ({e}); {RESUME_FIX}") from None
    if int(tensors.pop("epoch")) != state["epoch"]:
        return None
    return tensors, state
