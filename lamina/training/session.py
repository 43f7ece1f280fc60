"""What surrounds a run of the loop: seeds, the device, DDP, precision, and the checkpoint it resumes from."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lamina import distributed
from lamina.checkpoint import load_checkpoint
from lamina.config import Config, TrainerConfig
from lamina.data.stream import Ranks
from lamina.errors import LaminaError
from lamina.training.steps import pick_device, precision, seed_everything

log = logging.getLogger("lamina")
Checkpoint = tuple[dict[str, torch.Tensor], dict[str, Any]]


@dataclass
class Session:
    config: Config
    device: torch.device
    parallel: bool
    autocast: contextlib.AbstractContextManager
    scaler: torch.amp.GradScaler | None
    workdir: Path | None
    checkpoint: Checkpoint | None
    clock: Callable[[], float] = time.monotonic  # what trainer.time_limit is measured by (injectable for tests)

    @property
    def trainer(self) -> TrainerConfig:
        return self.config.trainer

    @property
    def saved(self) -> dict[str, Any] | None:
        """The checkpoint's JSON (a task restores its fitted preprocessing from it), or None when starting over."""
        return self.checkpoint[1] if self.checkpoint else None

    @property
    def writes(self) -> bool:
        return self.workdir is not None and distributed.is_main()

    def ranks(self) -> Ranks:
        return Ranks(distributed.world_size(), distributed.rank(), distributed.all_sum) if self.parallel else Ranks()


def start(config: Config, workdir: Path | None, resume: bool,
          fingerprints: Callable[[], dict[str, str]] | None = None,
          clock: Callable[[], float] = time.monotonic) -> Session:
    """Seed, pick the device, join the DDP group (checking with ``fingerprints`` that every process has the same
    config and data) and read the checkpoint to resume from: rank 0's, checked against the config."""
    trainer = config.trainer
    seed_everything(trainer.seed)
    device = pick_device(trainer.device)
    parallel = distributed.init(trainer.device)
    if parallel:
        device = distributed.device(trainer.device) or device
        if fingerprints is not None:
            distributed.check_agreement(fingerprints())
    autocast, scaler = precision(trainer, device)
    checkpoint = load_checkpoint(workdir) if (workdir and resume and distributed.is_main()) else None
    if parallel:  # rank 0's checkpoint, so no rank needs the run folder
        checkpoint = distributed.broadcast(checkpoint)
    if resume and checkpoint is None:
        log.warning("no checkpoint found in %s; training from the start", workdir)
    # Checked before the checkpoint's fitted states are used: they only fit the config they were written with.
    if checkpoint is not None and checkpoint[1]["config"] != config.model_dump(mode="json"):
        raise LaminaError(
            f"{workdir}: the config changed since this checkpoint was written; resume with the same config, "
            "or train without --resume to start over"
        )
    return Session(config, device, parallel, autocast, scaler, workdir, checkpoint, clock)
