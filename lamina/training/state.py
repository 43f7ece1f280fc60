"""The loop's state between epochs, and its checkpoint: weights, the best weights, the optimizer, both random
generators, fp16's loss scale and the history, so a resumed run continues exactly where it stopped."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lamina.checkpoint import load_optimizer, optimizer_tensors, save_checkpoint, write_atomic

METRICS_LOG = "metrics.jsonl"


@dataclass
class LoopState:
    best_state: dict[str, torch.Tensor]
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    epoch: int = 0  # the last finished epoch
    elapsed: float = 0.0  # training seconds so far, across resumes (trainer.time_limit)

    def numbers(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "history": self.history, "best_score": self.best_score,
                "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs, "elapsed": self.elapsed}


def save_state(workdir: Path, net: torch.nn.Module, loop: LoopState, optimizer: torch.optim.Optimizer,
               shuffle: torch.Generator, scaler: torch.amp.GradScaler | None, extra: dict[str, Any]) -> None:
    """Write the checkpoint and ``metrics.jsonl``; ``extra`` is the task's JSON (its fitted preprocessing, the
    config), kept beside the loop's."""
    optim_tensors, optim_state = optimizer_tensors(optimizer)
    tensors = {
        **{f"model.{k}": v for k, v in net.state_dict().items()},
        **{f"best.{k}": v for k, v in loop.best_state.items()},
        **optim_tensors,
        "rng.torch": torch.get_rng_state(),
        "rng.shuffle": shuffle.get_state(),
    }
    state = {**loop.numbers(), **extra, **optim_state}
    if scaler is not None:  # fp16's loss scale, which it has grown or shrunk step by step
        state["scaler"] = scaler.state_dict()
    save_checkpoint(workdir, tensors, state)
    # Rewritten whole from the history, so after a resume it holds each epoch exactly once.
    text = "".join(json.dumps(record) + "\n" for record in loop.history)
    write_atomic(workdir / METRICS_LOG, lambda p: p.write_text(text, encoding="utf-8"))


def restore_state(checkpoint: tuple[dict[str, torch.Tensor], dict[str, Any]], net: torch.nn.Module,
                  optimizer: torch.optim.Optimizer, shuffle: torch.Generator, scaler: torch.amp.GradScaler | None,
                  device: torch.device) -> LoopState:
    """Put a checkpoint back into the network, the optimizer and the generators; returns the loop's state."""
    tensors, state = checkpoint
    net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}
    load_optimizer(optimizer, tensors, state["param_groups"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(tensors["rng.torch"])
    shuffle.set_state(tensors["rng.shuffle"])
    return LoopState(best, state["history"], state["best_score"], state["best_epoch"], state["bad_epochs"],
                     state["epoch"], float(state.get("elapsed", 0.0)))
