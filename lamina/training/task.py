"""What the loop trains: a task gives the batches of an epoch, the loss of a batch and the validation score; the
loop (``lamina.training.loop``) owns everything else."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import torch

# One step's batch: what ``Task.loss`` reads, this process's rows, and the global batch's rows (the DDP weighting).
Batch = tuple[Any, int, int]


class Task(Protocol):
    network: torch.nn.Module
    """The weights that are trained, checkpointed and restored at their best epoch."""
    module: torch.nn.Module
    """What runs a batch: ``network`` itself, or a module owning it whose forward gives the loss. DDP wraps it and
    torch.compile compiles it."""
    source: str
    """The training data, as errors name it."""
    steps_per_epoch: int
    validates: bool
    """Whether ``validate`` scores held-out rows; without them the model is the last epoch's and nothing stops early."""

    def batches(self, shuffle: torch.Generator, parallel: bool) -> Iterator[Batch]:
        """One epoch of batches on the device, shuffled by ``shuffle`` (shared by every process and checkpointed);
        under DDP each is this process's slice of a global batch."""
        ...

    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        """The mean loss of this process's rows of ``batch``, through ``model`` (``module``, perhaps wrapped)."""
        ...

    def sample(self) -> Any:
        """One batch to try torch.compile on."""
        ...

    def validate(self) -> tuple[dict[str, float], float]:
        """What the epoch's record shows of validation, and the score that picks the best epoch (lower is better)."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON the checkpoint keeps besides the loop's own: what the task fitted before training (preprocessing)."""
        ...
