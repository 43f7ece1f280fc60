"""The network: input encoders → hidden layers → one head per output.

A batch is a dict of tensors: ``"dense"`` holds every passthrough input (numbers, binaries) already concatenated,
and each other input has its own key. Concatenating passthrough columns once per dataset rather than once per step
is what keeps Lamina's per-step cost close to a hand-written loop's.
"""

from __future__ import annotations

import torch
from torch import nn

from lamina.config import HiddenConfig
from lamina.hidden import Hidden
from lamina.inputs.base import InputType
from lamina.outputs.base import OutputType

DENSE = "dense"


class Network(nn.Module):
    def __init__(self, inputs: list[InputType], outputs: list[OutputType], hidden: HiddenConfig) -> None:
        super().__init__()
        self.dense_width = sum(t.width for t in inputs if t.passthrough)
        # Module names may not contain '.', column names may: modules are kept in lists beside their column names.
        self.input_names = [t.name for t in inputs if not t.passthrough]
        self.encoders = nn.ModuleList(t.encoder() for t in inputs if not t.passthrough)
        encoded = self.dense_width + sum(e.out_dim for e in self.encoders)
        self.hidden = Hidden(encoded, hidden)
        self.output_names = [t.name for t in outputs]
        self.heads = nn.ModuleList(t.head(self.hidden.out_dim) for t in outputs)

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [batch[DENSE]] if self.dense_width else []
        parts += [encoder(batch[name]) for name, encoder in zip(self.input_names, self.encoders)]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        h = self.hidden(self.encode(batch))
        return {name: head(h) for name, head in zip(self.output_names, self.heads)}
