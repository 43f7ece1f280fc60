"""The network: input encoders → hidden layers → one head per output.

A batch is a dict of tensors: ``"dense"`` holds every passthrough input (numbers, binaries) already concatenated,
and each other input has its own key. Concatenating passthrough columns once per dataset rather than once per step
is what keeps Lamina's per-step cost close to a hand-written loop's.

Sequence heads (text outputs) also see the token states of every encoder that has them (``with_states``), and in
training the target itself under ``teacher_key(name)`` (teacher forcing); without it they generate.

Spatial heads (boxes, masks) see the feature maps, finest first, of the one spatial input (an image): the network
runs that encoder's body once and pools its last map for the hidden layers, as the plain encoder would.
"""

from __future__ import annotations

import torch
from torch import nn

from lamina.config import HiddenConfig
from lamina.errors import LaminaError
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
        encoded = [t for t in inputs if not t.passthrough]
        source = spatial_source(encoded, outputs)
        # The spatial input's geometric augmentation moves its targets too, so training applies it (lamina.training)
        self.encoders = nn.ModuleList(t.spatial_encoder() if t is source else t.encoder() for t in encoded)
        self.maps_from = encoded.index(source) if source is not None else None
        self.hidden = Hidden(self.dense_width + sum(e.out_dim for e in self.encoders), hidden)
        self.output_names = [t.name for t in outputs]
        self.sequence = [t.sequence for t in outputs]
        self.spatial = [t.spatial for t in outputs]
        self.with_states = any(self.sequence)
        state_dims = [e.state_dim for e in self.encoders if hasattr(e, "with_states")]
        shapes = source.map_shapes(self.encoders[self.maps_from]) if source is not None else []
        self.heads = nn.ModuleList(t.head(self.hidden.out_dim, state_dims) if sequence
                                   else t.head(self.hidden.out_dim, shapes) if spatial else t.head(self.hidden.out_dim)
                                   for t, sequence, spatial in zip(outputs, self.sequence, self.spatial))

    def encode(self, batch: dict[str, torch.Tensor], states: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
               maps: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The encoded inputs ``(n, width)``; token states are appended to ``states`` and the spatial input's feature
        maps to ``maps`` when they are given."""
        parts = [batch[DENSE]] if self.dense_width else []
        for index, (name, encoder) in enumerate(zip(self.input_names, self.encoders)):
            if index == self.maps_from and maps is not None:
                maps.extend(encoder.feature_maps(batch[name]))
                parts.append(maps[-1].mean(dim=(2, 3)))
            elif states is not None and hasattr(encoder, "with_states"):
                vector, state = encoder.with_states(batch[name])
                parts.append(vector)
                states.append(state)
            else:
                parts.append(encoder(batch[name]))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not self.with_states and self.maps_from is None:
            h = self.hidden(self.encode(batch))
            return {name: head(h) for name, head in zip(self.output_names, self.heads)}
        states: list[tuple[torch.Tensor, torch.Tensor]] = []
        maps: list[torch.Tensor] = []
        h = self.hidden(self.encode(batch, states if self.with_states else None,
                                    maps if self.maps_from is not None else None))
        return {name: head(h, states, batch.get(teacher_key(name))) if sequence else head(h, maps) if spatial
                else head(h) for name, head, sequence, spatial in
                zip(self.output_names, self.heads, self.sequence, self.spatial)}


def spatial_source(inputs: list[InputType], outputs: list[OutputType]) -> InputType | None:
    """The one input whose feature maps the spatial outputs read; None when no output is spatial."""
    wanting = [t for t in outputs if t.spatial]
    if not wanting:
        return None
    sources = [t for t in inputs if t.spatial]
    if len(sources) != 1:
        found = ", ".join(repr(t.name) for t in sources) or "none"
        raise LaminaError(f"output '{wanting[0].name}' (type {wanting[0].kind}) reads the feature maps of exactly one "
                          f"image input, and the inputs have {found}; keep one image input")
    return sources[0]
