"""k networks of one preprocessor seen as one network: what cross-fitting (``lamina.folds``) trains and saves.

``Ensemble`` has the attributes every face reads from a ``Network`` -- ``input_names``, ``encoders``, ``hidden``,
``heads``, ``output_names``, ``dense_width`` -- laid out as one wide network, so prediction, ONNX export, serving,
explanations and layer probes work on it unchanged:

* ``encoders[j]`` runs input j's encoder of every member and concatenates their outputs;
* ``hidden`` splits the encoded vector back into each member's part (the passthrough columns are shared) and
  concatenates the members' hidden outputs;
* ``heads[o]`` runs each member's head on its part and averages them as the output type says
  (``OutputType.average``: mean probability for classes, mean value for numbers).

Only ``members`` holds parameters, so the weights file has keys ``members.<i>.<the network's own key>``.
"""

from __future__ import annotations

import torch
from torch import nn

from lamina.model import Network
from lamina.outputs.base import OutputType



class _Encoders(nn.Module):
    """Input j's encoder of every member; its output is theirs side by side."""

    def __init__(self, encoders: list[nn.Module]) -> None:
        super().__init__()
        self._members = tuple(encoders)  # a tuple: not registered, the parameters belong to ``Ensemble.members``
        self.out_dim = sum(e.out_dim for e in encoders)
        if hasattr(encoders[0], "embed"):  # text encoders: explanations vary their token embeddings
            self.embed, self.pool = self._embed, self._pool

    @property
    def members(self) -> tuple[nn.Module, ...]:
        return self._members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([e(x) for e in self._members], dim=-1)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.cat([e.embed(ids) for e in self._members], dim=-1)

    def _pool(self, keep: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        parts = torch.chunk(x, len(self._members), dim=-1)  # one architecture: equal embedding widths
        return torch.cat([e.pool(keep, p) for e, p in zip(self._members, parts)], dim=-1)


class _Hidden(nn.Module):
    """Each member's hidden layers on its own part of the encoded vector."""

    def __init__(self, members: list[Network]) -> None:
        super().__init__()
        self._members = tuple(members)
        self.dense_width = members[0].dense_width
        self.widths = [e.out_dim for e in members[0].encoders]  # the same architecture in every member
        self.out_dim = sum(m.hidden.out_dim for m in members)
        self._blocks = tuple(members[0].hidden.blocks)

    @property
    def blocks(self) -> tuple[nn.Module, ...]:
        """What layer probes hook: the first member's blocks (members differ; each is one view of the data)."""
        return self._blocks

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        k = len(self._members)
        dense, rest = encoded[:, :self.dense_width], encoded[:, self.dense_width:]
        blocks = torch.split(rest, [w * k for w in self.widths], dim=1) if self.widths else ()
        outs = []
        for i, member in enumerate(self._members):
            parts = [dense] if self.dense_width else []
            parts += [b[:, i * w:(i + 1) * w] for b, w in zip(blocks, self.widths)]
            outs.append(member.hidden(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)))
        return torch.cat(outs, dim=1)


class _Head(nn.Module):
    """Output o's head of every member, averaged as the output type averages."""

    def __init__(self, heads: list[nn.Module], width: int, output: OutputType) -> None:
        super().__init__()
        self._members, self.width, self.output = tuple(heads), width, output

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        parts = torch.split(h, self.width, dim=1)
        return self.output.average(torch.stack([head(p) for head, p in zip(self._members, parts)]))


class Ensemble(Network):
    """The average of ``members`` (networks of one preprocessor, one architecture)."""

    def __init__(self, members: list[Network], outputs: list[OutputType]) -> None:
        nn.Module.__init__(self)
        if any(m.with_states or m.maps_from is not None for m in members):
            raise ValueError("an ensemble averages class and number outputs; text outputs generate token by token, "
                             "and spatial outputs (boxes, masks) are not averaged")
        self.members = nn.ModuleList(members)
        first = members[0]
        self.dense_width, self.input_names = first.dense_width, list(first.input_names)
        self.output_names, self.sequence, self.with_states = list(first.output_names), list(first.sequence), False
        self.spatial, self.maps_from = list(first.spatial), None
        self.encoders = nn.ModuleList(_Encoders([m.encoders[j] for m in members]) for j in range(len(first.encoders)))
        self.hidden = _Hidden(members)
        width = first.hidden.out_dim
        self.heads = nn.ModuleList(_Head([m.heads[o] for m in members], width, t) for o, t in enumerate(outputs))

    # forward is Network's: heads(hidden(encode(batch))) through the wide modules above, so hooks on them (layer
    # probes) see what the ensemble computes.

