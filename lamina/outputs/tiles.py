"""Sliding-window inference (nnU-Net's): a picture larger than the training size is predicted by overlapping tiles
of the training size, each tile's logits weighted by a Gaussian centred on it (the border of a tile, which saw
least context, counts least), summed and divided by the summed weights, so the stitched map has the picture's size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.nn import functional as F

SIGMA = 1 / 8  # of the tile's side, nnU-Net's default
OVERLAP = 0.5  # of the tile: each pixel away from the border is seen by about four tiles


def starts(length: int, tile: int, overlap: float = OVERLAP) -> list[int]:
    """Tile offsets along one side: evenly spread from 0 to ``length - tile``, at most ``tile * (1 - overlap)``
    apart."""
    if length <= tile:
        return [0]
    count = math.ceil((length - tile) / max(1.0, tile * (1 - overlap))) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def gaussian(tile: tuple[int, int], sigma: float = SIGMA) -> torch.Tensor:
    """Weights ``(h, w)``: 1 at the centre, never 0 (a corner pixel still counts where only one tile covers it)."""
    axes = []
    for side in tile:
        x = torch.arange(side, dtype=torch.float64) - (side - 1) / 2
        axes.append(torch.exp(-0.5 * (x / (sigma * side)) ** 2))
    weights = axes[0][:, None] * axes[1][None]
    weights /= weights.max()
    return weights.clamp_(min=1e-3).float()


def sliding_window(forward: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tile: tuple[int, int],
                   overlap: float = OVERLAP, batch: int = 16) -> torch.Tensor:
    """Blended logits ``(K, H, W)`` of ``image`` ``(C, H, W)``; ``forward`` maps tiles ``(n, C, h, w)`` to logits
    ``(n, K, h, w)``. A side shorter than the tile is padded with black (as the image type pads) and cut back."""
    height, width = image.shape[-2:]
    # Tiles go to the network in the picture's own dtype (uint8 / uint16 pixels), as an exported graph wants them.
    padded = F.pad(image.float(), (0, max(0, tile[1] - width), 0, max(0, tile[0] - height)))
    corners = [(y, x) for y in starts(padded.shape[-2], tile[0], overlap)
               for x in starts(padded.shape[-1], tile[1], overlap)]
    weights = gaussian(tile)
    total = summed = None
    for first in range(0, len(corners), batch):
        chunk = corners[first:first + batch]
        tiles = torch.stack([padded[:, y:y + tile[0], x:x + tile[1]] for y, x in chunk]).to(image.dtype)
        logits = forward(tiles).float()
        if total is None:
            total = torch.zeros(logits.shape[1], *padded.shape[-2:])
            summed = torch.zeros(padded.shape[-2:])
        for (y, x), part in zip(chunk, logits):
            total[:, y:y + tile[0], x:x + tile[1]] += part * weights
            summed[y:y + tile[0], x:x + tile[1]] += weights
    return (total / summed)[:, :height, :width]
