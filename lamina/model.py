"""The network: input encoders → hidden layers → one head per output.

A batch is a dict of tensors: ``"dense"`` holds every passthrough input (numbers, binaries) already concatenated,
and each other input has its own key. Concatenating passthrough columns once per dataset rather than once per step
is what keeps Lamina's per-step cost close to a hand-written loop's.

Sequence heads (text outputs) also see the token states of every encoder that has them (``with_states``), and in
training the target itself under ``teacher_key(name)`` (teacher forcing); without it they generate.
"""

from __future__ import annotations

import torch
from torch import nn

from lamina.config import HiddenConfig
from lamina.hidden import Hidden
from lamina.inputs.base import InputType
from lamina.outputs.base import OutputType

DENSE = "dense"
TEACHER = "<target>"


def teacher_key(output: str) -> str:
    """The batch key of a sequence output's target tokens, given to its head in training (teacher forcing)."""
    return TEACHER + output


def without_teacher(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if not k.startswith(TEACHER)}


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
        self.sequence = [t.sequence for t in outputs]
        self.with_states = any(self.sequence)
        state_dims = [e.state_dim for e in self.encoders if hasattr(e, "with_states")]
        self.heads = nn.ModuleList(t.head(self.hidden.out_dim, state_dims) if sequence else t.head(self.hidden.out_dim)
                                   for t, sequence in zip(outputs, self.sequence))

    def encode(self, batch: dict[str, torch.Tensor],
               states: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        """The encoded inputs ``(n, width)``; token states are appended to ``states`` when it is given."""
        parts = [batch[DENSE]] if self.dense_width else []
        for name, encoder in zip(self.input_names, self.encoders):
            if states is not None and hasattr(encoder, "with_states"):
                vector, state = encoder.with_states(batch[name])
                parts.append(vector)
                states.append(state)
            else:
                parts.append(encoder(batch[name]))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not self.with_states:
            h = self.hidden(self.encode(batch))
            return {name: head(h) for name, head in zip(self.output_names, self.heads)}
        states: list[tuple[torch.Tensor, torch.Tensor]] = []
        h = self.hidden(self.encode(batch, states))
        return {name: head(h, states, batch.get(teacher_key(name))) if sequence else head(h)
                for name, head, sequence in zip(self.output_names, self.heads, self.sequence)}
