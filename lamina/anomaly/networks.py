"""The two detectors: an autoencoder (score: the row's mean squared reconstruction error) and Deep SVDD (Ruff et
al., 2018: a representation pulled towards a fixed centre; score: the squared distance to it). Deep SVDD's layers
have no biases, so the network cannot map every row to the centre by a constant."""

from __future__ import annotations

import torch
from torch import nn


def _mlp(widths: list[int], bias: bool, last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(widths) - 2 or last_activation:
            layers.append(nn.LeakyReLU(0.1) if not bias else nn.ReLU())
    return nn.Sequential(*layers)


class AutoEncoder(nn.Module):
    def __init__(self, width: int, hidden: list[int], code: int) -> None:
        super().__init__()
        self.encoder = _mlp([width, *hidden, code], bias=True, last_activation=False)
        self.decoder = _mlp([code, *reversed(hidden), width], bias=True, last_activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return ((self(x) - x) ** 2).mean(1)


class DeepSVDD(nn.Module):
    def __init__(self, width: int, hidden: list[int], code: int) -> None:
        super().__init__()
        self.encoder = _mlp([width, *hidden, code], bias=False, last_activation=False)
        self.register_buffer("center", torch.zeros(code))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def set_center(self, x: torch.Tensor, eps: float = 0.1) -> None:
        """The mean representation of the training rows before training; coordinates near 0 are pushed to ±eps,
        where a zero-weight network would sit at the centre trivially."""
        with torch.no_grad():
            c = self.encoder(x).mean(0)
            c[(c.abs() < eps) & (c < 0)] = -eps
            c[(c.abs() < eps) & (c >= 0)] = eps
            self.center.copy_(c)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return ((self(x) - self.center) ** 2).sum(1)


def build(method: str, width: int, hidden: list[int], code: int) -> AutoEncoder | DeepSVDD:
    return AutoEncoder(width, hidden, code) if method == "autoencoder" else DeepSVDD(width, hidden, code)


def scores(network: nn.Module, x: torch.Tensor, batch: int = 8192) -> torch.Tensor:
    network.eval()
    with torch.no_grad():
        return torch.cat([network.score(x[i:i + batch]) for i in range(0, len(x), batch)]) if len(x) else x[:, 0]
