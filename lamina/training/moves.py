"""Training's geometric augmentation when a target is spatial (boxes, masks): the pixels and the target move as one.

A classifier's image encoder shifts, rotates, zooms and flips its own batch; a box or a mask would then point at
the wrong pixels. So with a spatial output the encoder leaves geometry out (``spatial_encoder``) and each training
step draws one affine map per row here, resamples the image through it and lets each spatial output move its
target the same way (``OutputType.follow``).
"""

from __future__ import annotations

import torch

from lamina.inputs.base import InputType
from lamina.model import spatial_source
from lamina.outputs.base import OutputType

Tensors = dict[str, torch.Tensor]


class Moves:
    """``moves(inputs, targets)`` → the batch with the spatial input and its spatial targets moved together."""

    def __init__(self, source: InputType, outputs: list[OutputType]) -> None:
        self.source, self.outputs = source, [t for t in outputs if t.spatial]

    def __call__(self, inputs: Tensors, targets: Tensors) -> tuple[Tensors, Tensors]:
        x = inputs[self.source.name]
        theta = self.source.draw_move(x.shape[0])
        if theta is None:
            return inputs, targets
        theta = theta.to(x.device)
        size = (int(x.shape[-2]), int(x.shape[-1]))
        moved = {**targets, **{t.name: t.follow(targets[t.name], theta, size) for t in self.outputs}}
        return {**inputs, self.source.name: self.source.move(x, theta)}, moved


def moves_for(inputs: list[InputType], outputs: list[OutputType]) -> Moves | None:
    """The paired augmentation of a network's spatial outputs; None when it has none."""
    source = spatial_source([t for t in inputs if not t.passthrough], outputs)
    return Moves(source, outputs) if source is not None else None
