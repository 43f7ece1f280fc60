"""The timeseries encoders: a transformed batch ``(n, C + 1, T)`` (standardised channels, then the mask) → a vector.

Every encoder ignores padding: a row's vector is the same however far its split was padded. Each takes an optional
``augment`` module (lamina.inputs.timeseries_augment), applied in training only and holding no weights, so the
weight names are those of an encoder without it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


def augmented(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` through the encoder's augmentation when it trains and has one; unchanged otherwise."""
    augment = getattr(encoder, "augment", None)
    return augment(x) if encoder.training and augment is not None else x


def split_mask(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Values ``(n, C, T)`` and mask ``(n, 1, T)`` of a transformed batch."""
    return x[:, :-1], x[:, -1:]


def masked_pool(h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean and max over the real positions of ``h (n, D, T)``; an empty row gives zeros."""
    count = keep.sum(2).clamp(min=1.0)
    mean = (h * keep).sum(2) / count
    top = h.masked_fill(keep <= 0.5, float("-inf")).amax(2)
    return torch.cat([mean, torch.where(torch.isfinite(top), top, torch.zeros_like(top))], dim=1)


class ChannelNorm(nn.Module):
    """LayerNorm over channels at each time step: padding never enters a real position's statistics."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h.transpose(1, 2)).transpose(1, 2)


def _same_padding(kernel_size: int, dilation: int) -> nn.Module:
    """Explicit zero padding keeping the length (ONNX Runtime refuses padding='same' with a dilation)."""
    total = dilation * (kernel_size - 1)
    return nn.ConstantPad1d((total // 2, total - total // 2), 0.0)


class CNNEncoder(nn.Module):
    """Dilated residual convolutions (dilation 1, 2, 4, ...), re-masked after every block, then masked mean + max.

    Zeroing the padding after each block keeps it identical to the convolution's own zero padding, so the features
    at a real position are the same however much padding follows."""

    def __init__(self, channels: int, width: int, layers: int, kernel_size: int, dropout: float,
                 augment: nn.Module | None = None) -> None:
        super().__init__()
        self.augment = augment
        self.stem = nn.Conv1d(channels + 1, width, 1)
        self.blocks = nn.ModuleList(
            nn.Sequential(_same_padding(kernel_size, 2 ** i), nn.Conv1d(width, width, kernel_size, dilation=2 ** i),
                          ChannelNorm(width), nn.GELU(), nn.Dropout(dropout))
            for i in range(layers))
        self.out_dim = 2 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = augmented(self, x)
        _, keep = split_mask(x)
        h = self.stem(x) * keep
        for block in self.blocks:
            h = (h + block(h)) * keep
        return masked_pool(h, keep)


class GRUEncoder(nn.Module):
    """A bidirectional GRU over the packed rows (padding never enters): last states + masked mean and max of the outputs."""

    def __init__(self, channels: int, width: int, layers: int, dropout: float, augment: nn.Module | None = None
                 ) -> None:
        super().__init__()
        self.augment = augment
        self.gru = nn.GRU(channels, width, num_layers=layers, batch_first=True, bidirectional=True,
                          dropout=dropout if layers > 1 else 0.0)
        self.out_dim = 6 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values, keep = split_mask(augmented(self, x))
        lengths = keep[:, 0].sum(1).long()
        packed = pack_padded_sequence(values.transpose(1, 2), lengths.clamp(min=1).cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, last = self.gru(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=values.shape[2])
        states = torch.cat([last[-2], last[-1]], dim=1)  # the last layer's forward and backward states
        pooled = masked_pool(out.transpose(1, 2), keep)  # mean and max over the real steps
        return torch.cat([states, pooled], dim=1) * (lengths > 0).unsqueeze(1)  # an empty row gives zeros


def _positions(length: int, dim: int, device: torch.device) -> torch.Tensor:
    position = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)
    scale = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * scale)
    table[:, 1::2] = torch.cos(position * scale)[:, : dim // 2]
    return table


class TransformerEncoder(nn.Module):
    """Patches of ``patch`` readings → tokens (+ sinusoidal positions) → transformer blocks with a key padding mask
    (patches of padding only) → masked mean."""

    def __init__(self, channels: int, width: int, layers: int, heads: int, patch: int, dropout: float,
                 augment: nn.Module | None = None) -> None:
        super().__init__()
        self.augment = augment
        self.patch = patch
        self.embed = nn.Conv1d(channels + 1, width, patch, stride=patch)
        block = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, norm=nn.LayerNorm(width), enable_nested_tensor=False)
        self.out_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = augmented(self, x)
        tail = -x.shape[2] % self.patch
        if tail:
            x = nn.functional.pad(x, (0, tail))
        _, keep = split_mask(x)
        tokens = self.embed(x).transpose(1, 2)  # (n, P, width)
        real = keep[:, 0].unflatten(1, (-1, self.patch)).amax(2) > 0.5  # (n, P): a patch with one real reading
        empty = ~real.any(1)
        # An empty row would attend to nothing (NaN): let it see its first token (not in place: ONNX refuses &=).
        padding = torch.cat([~real[:, :1] & ~empty.unsqueeze(1), ~real[:, 1:]], dim=1)
        h = self.blocks(tokens + _positions(tokens.shape[1], tokens.shape[2], x.device), src_key_padding_mask=padding)
        w = (~padding).unsqueeze(-1).to(h.dtype)
        return ((h * w).sum(1) / w.sum(1).clamp(min=1.0)).masked_fill(empty.unsqueeze(1), 0.0)


class MaskedBatchNorm(nn.BatchNorm1d):
    """Batch normalisation whose training statistics count real readings only (padding never shifts them); in
    evaluation the running statistics, as ``BatchNorm1d``."""

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.training:
            count = keep.sum().clamp(min=2.0)
            mean = (h * keep).sum((0, 2)) / count
            var = (((h - mean[None, :, None]) * keep) ** 2).sum((0, 2)) / count
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * count / (count - 1), self.momentum)
                self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight / torch.sqrt(var + self.eps)
        return (h - mean[None, :, None]) * scale[None, :, None] + self.bias[None, :, None]


INCEPTION_KERNELS = (39, 19, 9)  # InceptionTime's 40 / 20 / 10, odd for a centred window


class InceptionModule(nn.Module):
    """Bottleneck (1 × 1) → three convolutions of different widths, beside a max-pool → 1 × 1 branch; concatenated,
    batch-normalised, ReLU, re-masked."""

    def __init__(self, channels: int, filters: int, kernels: tuple[int, ...]) -> None:
        super().__init__()
        self.bottleneck = nn.Conv1d(channels, filters, 1, bias=False)
        self.convs = nn.ModuleList(nn.Sequential(_same_padding(k, 1), nn.Conv1d(filters, filters, k, bias=False))
                                   for k in kernels)
        self.pool_conv = nn.Conv1d(channels, filters, 1, bias=False)
        self.norm = MaskedBatchNorm(filters * (len(kernels) + 1))

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        z = self.bottleneck(h)  # no bias: zero padding stays zero
        # -inf padding is what max_pool1d pads with, so the last reading's window is the same however padded
        pooled = F.max_pool1d(h.masked_fill(keep <= 0.5, float("-inf")), 3, 1, 1)
        pooled = torch.where(keep > 0.5, pooled, torch.zeros_like(pooled))
        out = torch.cat([conv(z) for conv in self.convs] + [self.pool_conv(pooled)], dim=1)
        return torch.relu(self.norm(out, keep)) * keep


class InceptionEncoder(nn.Module):
    """InceptionTime (Ismail Fawaz et al., 2020), one network: ``layers`` inception modules with a residual
    shortcut (1 × 1 convolution + batch norm) every three, then global average pooling over the real readings."""

    def __init__(self, channels: int, width: int, layers: int, dropout: float, augment: nn.Module | None = None,
                 kernels: tuple[int, ...] = INCEPTION_KERNELS) -> None:
        super().__init__()
        self.augment = augment
        filters = width // (len(kernels) + 1)
        self.out_dim = filters * (len(kernels) + 1)
        self.blocks = nn.ModuleList(InceptionModule(channels + 1 if i == 0 else self.out_dim, filters, kernels)
                                      for i in range(layers))
        self.shortcuts = nn.ModuleList(nn.Conv1d(channels + 1 if i == 0 else self.out_dim, self.out_dim, 1, bias=False)
                                       for i in range(0, layers - 2, 3))
        self.shortcut_norms = nn.ModuleList(MaskedBatchNorm(self.out_dim) for _ in self.shortcuts)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = augmented(self, x)
        _, keep = split_mask(x)
        h = residual = x * keep
        for i, module in enumerate(self.blocks):
            h = module(h, keep)
            if i % 3 == 2 and i // 3 < len(self.shortcuts):
                j = i // 3
                h = torch.relu(h + self.shortcut_norms[j](self.shortcuts[j](residual), keep)) * keep
                residual = h
        count = keep.sum(2).clamp(min=1.0)
        return self.dropout((h * keep).sum(2) / count)
