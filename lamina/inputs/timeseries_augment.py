"""Training-time augmentation of transformed series ``(n, C + 1, T)``: new readings, same shape, same mask.

* jitter: Gaussian noise of std ``jitter`` (the channels are standardised, so it is a fraction of a channel's std);
* scaling: each row's channels multiplied by a factor drawn from N(1, ``scaling``);
* time warping: the row resampled along a smooth random monotone curve (speed varies by up to ± ``warp``);
* window slicing: a random window of at least ``window`` of the row, stretched back to the row's length.

Warping and slicing are one resampling of each row's real readings (linear interpolation inside the row), so the
padding stays zero and the mask is untouched. Draws from the global CPU RNG, which training seeds and checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn

KNOTS = 4  # control points of the warping curve: a few slow / fast stretches per row


class SeriesAugment(nn.Module):
    def __init__(self, jitter: float, scaling: float, warp: float, window: float) -> None:
        super().__init__()
        self.jitter, self.scaling, self.warp, self.window = jitter, scaling, warp, window

    def _positions(self, lengths: torch.Tensor, steps: int) -> torch.Tensor:
        """(n, T) where each output step reads from (fractional index in the row); beyond the row's end: 0."""
        n = len(lengths)
        t = torch.arange(steps, dtype=torch.float32)[None].expand(n, -1)
        last = (lengths - 1).clamp(min=0).float()[:, None]
        u = (t / last.clamp(min=1.0)).clamp(max=1.0)  # 0 .. 1 along each row
        if self.warp:
            speed = 1 + self.warp * (2 * torch.rand(n, KNOTS + 1) - 1)  # > 0 for warp < 1
            knots = torch.linspace(0, 1, KNOTS + 1)
            at = torch.searchsorted(knots, u.contiguous().clamp(max=1 - 1e-6), right=True).clamp(1, KNOTS) - 1
            frac = (u - knots[at]) * KNOTS
            speeds = torch.gather(speed, 1, at) * (1 - frac) + torch.gather(speed, 1, at + 1) * frac
            warped = torch.cumsum(speeds, 1) * (t <= last)
            u = (warped - warped[:, :1]) / (warped.amax(1, keepdim=True) - warped[:, :1]).clamp(min=1e-6)
        start = torch.zeros(n, 1)
        size = torch.ones(n, 1)
        if self.window < 1:
            size = self.window + (1 - self.window) * torch.rand(n, 1)
            start = (1 - size) * torch.rand(n, 1)
        return ((start + size * u) * last).clamp(min=0) * (t <= last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values, keep = x[:, :-1], x[:, -1:]
        n, channels, steps = values.shape
        if self.warp or self.window < 1:
            source = self._positions(keep[:, 0].sum(1).long().cpu(), steps).to(x.device)
            low = source.floor().long().clamp(max=steps - 1)
            high = (low + 1).clamp(max=steps - 1)
            frac = (source - low).unsqueeze(1).to(x.dtype)
            index = lambda i: i.unsqueeze(1).expand(n, channels, steps)  # noqa: E731
            values = values.gather(2, index(low)) * (1 - frac) + values.gather(2, index(high)) * frac
        if self.scaling:
            values = values * (1 + self.scaling * torch.randn(n, channels, 1)).to(x.device, x.dtype)
        if self.jitter:
            values = values + self.jitter * torch.randn(values.shape).to(x.device, x.dtype)
        return torch.cat([values * keep, keep], dim=1)
