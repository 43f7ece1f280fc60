"""The audio encoder: log-mel features → augmented (in training only) → optional MFCC → normalised → masked
(SpecAugment, training only) → a compact keyword-spotting CNN (residual temporal convolutions) → a vector."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

UTTERANCE_STD_FLOOR = 0.1  # natural-log units: a silent clip (every bin constant) stays finite


def dct_matrix(n_mels: int, n_mfcc: int) -> torch.Tensor:
    """(n_mfcc, n_mels) orthonormal DCT-II: MFCC = this @ log-mel (the first ``n_mfcc`` cepstral coefficients)."""
    k = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
    n = torch.arange(n_mels, dtype=torch.float64)[None]
    basis = torch.cos(math.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    basis[0] /= math.sqrt(2.0)
    return basis.float()


class Augment(nn.Module):
    """Random time shift, gain, background noise and SpecAugment masks, on log-mel features.

    * shift: frames move by up to ``shift`` of the clip, the gap filled with the clip's quietest level;
    * gain: ``± gain`` dB is an additive offset on log power (a clip louder or softer);
    * noise (with probability ``noise``): mixed in on the power spectrum at a random SNR in ``snr`` dB, which is
      what mixing an independent noise waveform does on average (powers of uncorrelated signals add): noise with
      a random spectral tilt (white to brown-ish) and a random per-frame level, log(exp(x) + noise power);
    * masks (after normalisation, so the masked value 0 is the training mean): ``time_masks`` bands of up to
      ``time_mask`` of the frames and ``freq_masks`` bands of up to ``freq_mask`` of the bins.

    Draws from the global CPU RNG, which training seeds and checkpoints, so a resumed run draws the same numbers.
    """

    def __init__(self, shift: float, gain: float, noise: float, snr: Sequence[float], time_masks: int,
                 time_mask: float, freq_masks: int, freq_mask: float) -> None:
        super().__init__()
        self.shift, self.gain, self.noise, self.snr = shift, gain, noise, (float(snr[0]), float(snr[1]))
        self.time_masks, self.time_mask, self.freq_masks, self.freq_mask = time_masks, time_mask, freq_masks, freq_mask

    def signal(self, x: torch.Tensor) -> torch.Tensor:
        """Shift, gain and noise on (n, bins, frames) natural-log mel power."""
        n, bins, frames = x.shape
        u = torch.rand(n, 4)  # CPU draws: the same on every device, and saved with the checkpoint
        if self.shift:
            most = int(self.shift * frames)
            offset = torch.round((u[:, 0] * 2 - 1) * most).long().to(x.device)
            source = torch.arange(frames, device=x.device)[None] - offset[:, None]  # (n, frames)
            inside = (source >= 0) & (source < frames)
            floor = x.amin(dim=(1, 2), keepdim=True)
            moved = x.gather(2, source.clamp(0, frames - 1)[:, None].expand(n, bins, frames))
            x = torch.where(inside[:, None], moved, floor)
        if self.gain:
            x = x + ((u[:, 1] * 2 - 1) * self.gain * math.log(10) / 10).to(x.device, x.dtype).view(n, 1, 1)
        if self.noise:
            snr_db = self.snr[0] + u[:, 2] * (self.snr[1] - self.snr[0])
            tilt = torch.rand(n, 1, 1) * 2  # 0 white ... 2 brown, over the mel bins (1/f^tilt, roughly)
            ramp = torch.linspace(0, 1, bins).view(1, bins, 1)
            shape = torch.exp(-tilt * ramp * math.log(bins))
            shape = shape / shape.mean(dim=1, keepdim=True)
            level = torch.exp(torch.randn(n, 1, frames) * 0.3)  # the noise's own slow loudness changes
            signal_power = torch.exp(x.float()).mean(dim=(1, 2), keepdim=True).cpu()
            noise_power = signal_power / 10 ** (snr_db.view(n, 1, 1) / 10) * shape * level
            mixed = torch.logaddexp(x.float(), torch.log(noise_power).to(x.device))
            use = (u[:, 3] < self.noise).to(x.device).view(n, 1, 1)
            x = torch.where(use, mixed.to(x.dtype), x)
        return x

    def masks(self, x: torch.Tensor) -> torch.Tensor:
        """SpecAugment time and frequency masks on normalised (n, bins, frames) features: set to 0."""
        n, bins, frames = x.shape
        keep = torch.ones(n, bins, frames, dtype=torch.bool)
        for count, most, size, axis in ((self.time_masks, self.time_mask, frames, 2),
                                        (self.freq_masks, self.freq_mask, bins, 1)):
            width_max = int(most * size)
            if not count or width_max < 1:
                continue
            width = (torch.rand(n, count) * (width_max + 1)).long()
            start = (torch.rand(n, count) * (size - width + 1)).long()
            index = torch.arange(size).view(1, 1, size)
            band = ((index >= start[..., None]) & (index < (start + width)[..., None])).any(dim=1)  # (n, size)
            keep &= ~(band[:, None, :] if axis == 2 else band[:, :, None])
        return x * keep.to(x.device, x.dtype)


def utterance_normalise(x: torch.Tensor) -> torch.Tensor:
    """Per clip: minus its mean over time in each bin (cepstral mean normalisation), over its std over all bins and
    frames (one scale per clip, so quiet bins are not blown up to the loud ones' level; floored for silence)."""
    x = x - x.mean(dim=2, keepdim=True)
    return x / x.square().mean(dim=(1, 2), keepdim=True).sqrt().clamp(min=UTTERANCE_STD_FLOOR)


class TemporalBlock(nn.Module):
    """Two 1-D convolutions along time (the mel bins are the channels) with norm and ReLU, and a shortcut (a strided
    1×1 projection when the width or the length changes): a TC-ResNet block (Choi et al., 2019)."""

    def __init__(self, width_in: int, width: int, kernel: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(width_in, width, kernel, stride, kernel // 2, bias=False)
        self.norm1 = nn.BatchNorm1d(width)
        self.conv2 = nn.Conv1d(width, width, kernel, 1, kernel // 2, bias=False)
        self.norm2 = nn.BatchNorm1d(width)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or width_in != width:
            self.shortcut = nn.Sequential(nn.Conv1d(width_in, width, 1, stride, bias=False), nn.BatchNorm1d(width))
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)), inplace=True)
        y = self.norm2(self.conv2(y))
        return self.dropout(F.relu(y + self.shortcut(x), inplace=True))


def tc_resnet(bins: int, widths: Sequence[int], kernel: int, dropout: float) -> nn.Sequential:
    """A temporal-convolution ResNet for keyword spotting: the spectrogram's bins are the input channels, so every
    filter sees the whole spectrum and the convolutions are 1-D: fast on a CPU, and few parameters. A 3-wide stem,
    then one block per further width, each halving the length."""
    layers: list[nn.Module] = [nn.Conv1d(bins, widths[0], 3, 1, 1, bias=False), nn.BatchNorm1d(widths[0]),
                               nn.ReLU(inplace=True)]
    for width_in, width in zip(widths[:-1], widths[1:]):
        layers.append(TemporalBlock(width_in, width, kernel, 2, dropout))
    return nn.Sequential(*layers)


class AudioEncoder(nn.Module):
    """float16 log-mel (n, n_mels, frames) → (n, out_dim). Normalises each clip by its own mean per bin and its
    std (``utterance``: a fixed microphone or line response, an offset per bin on log power, cancels), or per mel
    bin (or MFCC coefficient) with the mean and std fitted on the training clips. ``perturb`` (speaker, room,
    channel; training only) runs before ``augment``'s shift, gain and noise."""

    def __init__(self, body: nn.Module, out_dim: int, mean: Sequence[float], std: Sequence[float],
                 dct: torch.Tensor | None, augment: Augment | None, perturb: nn.Module | None = None,
                 utterance: bool = False) -> None:
        super().__init__()
        self.body, self.out_dim, self.augment = body, out_dim, augment
        self.perturb, self.utterance = perturb, utterance
        # Not persistent: the fitted state lives in lamina.json, and the DCT is a formula, not weights.
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1), persistent=False)
        self.register_buffer("dct", dct, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        augment = self.training and self.augment is not None
        if augment:
            if self.perturb is not None:
                x = self.perturb(x)
            x = self.augment.signal(x)
        if self.dct is not None:
            x = torch.matmul(self.dct, x)  # (k, bins) @ (n, bins, frames) → (n, k, frames)
        x = utterance_normalise(x) if self.utterance else (x - self.mean) / self.std
        if augment:
            x = self.augment.masks(x)
        return self.body(x).mean(dim=2)
