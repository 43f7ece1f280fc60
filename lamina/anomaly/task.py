"""The anomaly detector as a task of the one training loop: minibatches of the training rows' features, the
autoencoder's reconstruction error or Deep SVDD's distance as the loss, the validation rows' mean score as what
picks the best epoch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from lamina import distributed
from lamina.anomaly.model import network_for
from lamina.anomaly.networks import DeepSVDD, scores
from lamina.training.session import Session
from lamina.training.splits import batch_bounds
from lamina.training.task import Batch


class ScoreLoss(nn.Module):
    """The mean score of a batch as a module's forward (what DDP and torch.compile wrap)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.score(x).mean()


class AnomalyTask:
    def __init__(self, session: Session, train: np.ndarray, valid: np.ndarray, state: dict[str, Any]) -> None:
        self.session, self.source, self.fitted = session, "training rows", state
        device = session.device
        self.train = torch.from_numpy(train).to(device)
        self.valid = torch.from_numpy(valid).to(device)
        self.network = network_for(session.config, train.shape[1]).to(device)
        if isinstance(self.network, DeepSVDD) and session.saved is None:
            self.network.set_center(self.train)
        self.module = ScoreLoss(self.network)
        self.bounds = batch_bounds(len(train), min(session.trainer.batch_size, len(train)))
        self.steps_per_epoch = len(self.bounds) - 1
        self.validates = len(valid) > 0

    def batches(self, shuffle: torch.Generator, parallel: bool) -> Iterator[Batch]:
        order = torch.randperm(len(self.train), generator=shuffle).to(self.session.device)
        for start, end in zip(self.bounds, self.bounds[1:]):
            index, rows = order[start:end], end - start
            if parallel:
                index, rows = distributed.shard(index)
            yield self.train[index], rows, end - start

    def loss(self, model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return model(batch)

    def sample(self) -> torch.Tensor:
        return self.train[:self.bounds[1]]

    def validate(self) -> tuple[dict[str, float], float]:
        score = float(scores(self.network, self.valid).mean())
        self.network.train()
        return {"val_score": score}, score

    def state(self) -> dict[str, Any]:
        return self.fitted
