"""The hidden layers: stacked blocks that turn the encoded inputs into ever more abstract features."""

from __future__ import annotations

import torch
from torch import nn

from lamina.config import HiddenConfig

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


class Block(nn.Module):
    """Linear → norm → activation → dropout, with a skip connection when the width does not change."""

    def __init__(self, in_dim: int, out_dim: int, config: HiddenConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
        if config.norm == "batch":
            layers.append(nn.BatchNorm1d(out_dim))
        elif config.norm == "layer":
            layers.append(nn.LayerNorm(out_dim))
        layers.append(ACTIVATIONS[config.activation]())
        if config.dropout > 0:
            layers.append(nn.Dropout(config.dropout))
        self.body = nn.Sequential(*layers)
        self.residual = config.residual and in_dim == out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class Hidden(nn.Module):
    """``depth`` blocks of ``width`` units; depth 0 hands the encoded inputs straight to the heads."""

    def __init__(self, in_dim: int, config: HiddenConfig) -> None:
        super().__init__()
        dims = [in_dim] + [config.width] * config.depth
        self.blocks = nn.ModuleList(Block(a, b, config) for a, b in zip(dims, dims[1:]))
        self.out_dim = dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x
