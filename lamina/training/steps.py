"""The pieces of one optimizer step that every task shares: seeds, the device, the learning-rate schedule, the
update (backward, clipping, fp16 scaling), precision, and the check that the loss stayed finite."""

from __future__ import annotations

import contextlib
import math
import random

import numpy as np
import torch

from lamina.budget import progress as schedule_progress
from lamina.config import TrainerConfig
from lamina.errors import LaminaError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise LaminaError("trainer.device is 'cuda' but no CUDA GPU is available; use 'auto' or 'cpu'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_factor(trainer: TrainerConfig, step: int, total: int, elapsed: float = 0.0) -> float:
    """The schedule as a pure function of the step (and, with ``trainer.time_limit``, of the training seconds
    spent), so resuming needs only the step count and the time spent."""
    progress = schedule_progress(step, total, elapsed, trainer.time_limit)
    if trainer.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if trainer.schedule == "onecycle":
        warm = 0.3  # as torch's OneCycleLR: rise for 30 % of the steps, then anneal with a cosine
        if progress < warm:
            return 0.04 + 0.96 * progress / warm
        return 0.5 * (1 + math.cos(math.pi * (progress - warm) / (1 - warm)))
    return 1.0


def update(net: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float | None,
           scaler: torch.amp.GradScaler | None = None) -> None:
    """One optimizer step: backward, clip the gradient norm, step; with fp16's ``scaler`` the loss is scaled up so
    small gradients survive in half precision, and the gradients are unscaled before clipping sees them."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        optimizer.step()
        return
    scaler.scale(loss).backward()
    if grad_clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    scaler.step(optimizer)  # skipped when the scaled gradients overflowed; the scale then shrinks
    scaler.update()


def check_finite(running: torch.Tensor, epoch: int, learning_rate: float) -> None:
    if not torch.isfinite(running):
        raise LaminaError(
            f"training diverged at epoch {epoch} (loss is not finite); lower trainer.learning_rate "
            f"(now {learning_rate}) or check the data for extreme values"
        )


def snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights; cloning tensors costs a quarter of deepcopying the state dict."""
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def precision(trainer: TrainerConfig, device: torch.device
              ) -> tuple[contextlib.AbstractContextManager, torch.amp.GradScaler | None]:
    """The context the forward pass and loss run in, and fp16's gradient scaler. Validation and metrics run
    outside it, in fp32."""
    if trainer.precision == "fp32":
        return contextlib.nullcontext(), None
    if trainer.precision == "fp16" and device.type != "cuda":
        raise LaminaError("trainer.precision 'fp16' needs a CUDA GPU (it relies on CUDA loss scaling); on CPU use "
                          "'bf16'")
    dtype = torch.bfloat16 if trainer.precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if trainer.precision == "fp16" else None
    # One object for every step: autocast restores the previous state on exit, so it can be entered again.
    return torch.autocast(device.type, dtype=dtype), scaler
