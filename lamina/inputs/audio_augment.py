"""Augmentations that make a keyword model hold across speakers, rooms and microphones, on natural-log mel power
(n, bins, frames), in training only.

They work on the cached log-mel rather than the waveform, so an epoch never decodes or re-runs an STFT (a CPU
keeps up), and each is what the waveform change does to a mel spectrogram:

* speed (a tape played faster by s): every frequency times s and the clip 1/s as long, one 2-D resampling;
* tempo (the word faster, the pitch kept): the time axis alone;
* pitch (± semitones, the formants kept): the log-mel split into its spectral envelope (the low cepstral
  coefficients) and the fine, harmonic structure (the rest); only the fine part moves along frequency;
* vocal-tract-length perturbation (Jaitly and Hinton, 2013): the frequency axis warped by α up to 0.8 of the top
  frequency, then linearly so the top stays put: formants move, as from a longer or shorter vocal tract;
* reverberation: a synthetic room impulse response is exponentially decaying noise; its expected effect on the
  power spectrogram is a causal convolution along time with the decay 10^(-6 t / RT60) (60 dB in RT60), per
  bin, with high frequencies dying faster (air and walls absorb them), added at a random direct-to-reverberant
  ratio;
* channel: a random microphone or line response, a gain per frequency (exact on the power of a linear filter
  smooth across a mel band): a telephone band-pass (about 300-3400 Hz), a cheap microphone (high-pass, low-pass and
  a resonance), or a random smooth equaliser curve; then the clip's own floor, as a real channel has one;
* recorded noise (with a folder of noise clips): a clip of it, at a random time offset, mixed on the power
  spectrum at a random SNR (powers of independent signals add).

Every draw is from the global CPU RNG, which training seeds and checkpoints, so a seeded run repeats exactly.
Outside the clip (a slowed word runs past its end, a band moved above the top) reads the clip's quietest level.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LN10_DB = math.log(10) / 10  # dB of power → natural-log units
VTLP_KNEE = 0.8  # of the top frequency: below it frequencies scale by α, above it the warp closes to the top


@dataclass(frozen=True)
class Axes:
    """What the augmentations need to know of the features: each mel bin's centre in Hz, frames per second."""

    centres: tuple[float, ...]
    top: float  # Hz: the highest frequency the features cover
    frame_rate: float


@dataclass(frozen=True)
class PerturbOptions:
    speed: tuple[float, float] = (1.0, 1.0)
    tempo: tuple[float, float] = (1.0, 1.0)
    pitch: float = 0.0  # semitones, either way
    vtlp: tuple[float, float] = (1.0, 1.0)
    reverb: float = 0.0  # probability
    rt60: tuple[float, float] = (0.1, 0.8)
    drr: tuple[float, float] = (-3.0, 12.0)  # dB: direct-to-reverberant
    channel: float = 0.0  # probability
    recorded_noise: float = 0.0  # probability, with a noise bank
    snr: tuple[float, float] = (5.0, 30.0)


def _uniform(n: int, bounds: Sequence[float]) -> torch.Tensor:
    return bounds[0] + torch.rand(n) * (bounds[1] - bounds[0])


def _fractional_index(hz: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Where frequencies fall on the bins, as fractional bin indices (linear between centres, beyond the ends by
    the end spacing): the inverse of ``centres``."""
    i = torch.searchsorted(centres, hz.contiguous()).clamp(1, centres.numel() - 1)
    lo, hi = centres[i - 1], centres[i]
    return (i - 1).to(hz.dtype) + (hz - lo) / (hi - lo)


def _resample(x: torch.Tensor, time_source: torch.Tensor, bin_source: torch.Tensor) -> torch.Tensor:
    """x (n, bins, frames) read at fractional (n, frames) source frames and (n, bins) source bins, bilinear;
    outside reads 0."""
    n, bins, frames = x.shape
    gx = (2 * time_source / max(frames - 1, 1) - 1)[:, None, :].expand(n, bins, frames)
    gy = (2 * bin_source / max(bins - 1, 1) - 1)[:, :, None].expand(n, bins, frames)
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(x[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[:, 0]


class Perturb(nn.Module):
    """The augmentations above, in the order sound meets them: speaker (speed, tempo, pitch, vocal tract), room,
    microphone or line, background noise. ``noise_bank`` loads the recorded noise's log-mel when first needed
    (training only), so a loaded model never reads the folder."""

    def __init__(self, axes: Axes, options: PerturbOptions,
                 noise_bank: Callable[[], torch.Tensor] | None = None) -> None:
        super().__init__()
        self.o, self.axes, self.frame_rate, self.top = options, axes, axes.frame_rate, axes.top
        self.register_buffer("centres", torch.tensor(axes.centres, dtype=torch.float32), persistent=False)
        self._load_noise, self._noise = noise_bank, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        floor = x.amin(dim=(1, 2), keepdim=True)
        o = self.o
        if o.pitch or any(r != (1.0, 1.0) for r in (o.speed, o.tempo, o.vtlp)):
            x = self.speaker(x - floor) + floor  # resampled above the floor: outside the clip reads the floor
        if self.o.reverb:
            x = self.room(x)
        if self.o.channel:
            x = self.line(x, floor)
        if self.o.recorded_noise and self._load_noise is not None:
            x = self.noise(x)
        return x

    # --- the speaker ------------------------------------------------------------------------------------------

    def _vtlp_source(self, hz: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """The source frequency each output frequency reads so formants move by α (n, 1) below the knee."""
        knee = VTLP_KNEE * self.top * torch.clamp(alpha, max=1.0)
        below = hz / alpha
        above = knee / alpha + (hz - knee) * (self.top - knee / alpha) / (self.top - knee)
        return torch.where(hz <= knee, below, above)

    def speaker(self, x: torch.Tensor) -> torch.Tensor:
        """Speed, tempo and vocal tract in one resampling of x (above its floor, ≥ 0); then pitch."""
        n, bins, frames = x.shape
        o, centres = self.o, self.centres.to(x.device)
        speed, tempo, alpha = _uniform(n, o.speed), _uniform(n, o.tempo), _uniform(n, o.vtlp)
        if o.speed != (1.0, 1.0) or o.tempo != (1.0, 1.0) or o.vtlp != (1.0, 1.0):
            middle = (frames - 1) / 2
            time_source = middle + (torch.arange(frames)[None] - middle) * (speed * tempo)[:, None]
            hz = self._vtlp_source(centres.cpu()[None] / speed[:, None], alpha[:, None])
            x = _resample(x, time_source.to(x.device), _fractional_index(hz, centres.cpu()).to(x.device))
        if o.pitch:
            x = self.shift_pitch(x, 2 ** (_uniform(n, (-o.pitch, o.pitch)) / 12))
        return x

    def shift_pitch(self, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        """Harmonics times ``factor`` (n,), the spectral envelope kept: only the fine structure is resampled."""
        n, bins, frames = x.shape
        kept = max(2, bins // 3)  # cepstral coefficients that make the envelope (a smooth curve over the bins)
        k = torch.arange(bins, dtype=torch.float32)
        basis = torch.cos(math.pi / bins * (k[None] + 0.5) * k[:kept, None])  # (kept, bins), rows orthogonal
        basis = basis / basis.norm(dim=1, keepdim=True)
        envelope = torch.einsum("kb,kc,nct->nbt", basis, basis, x.cpu()).to(x.device)
        fine = x - envelope
        centres = self.centres.cpu()
        source = _fractional_index(centres[None] / factor[:, None], centres)
        time = torch.arange(frames, dtype=torch.float32)[None].expand(n, frames)
        return envelope + _resample(fine, time.to(x.device), source.to(x.device))

    # --- the room, the line, the noise ------------------------------------------------------------------------

    def room(self, x: torch.Tensor) -> torch.Tensor:
        """With probability ``reverb``: the power plus its exponentially decaying tail, RT60 and DRR at random."""
        n, bins, frames = x.shape
        rt60 = _uniform(n, self.o.rt60)[:, None] * (1 - 0.5 * torch.rand(n, 1) * self.centres.cpu()[None] / self.top)
        lag = torch.arange(1, frames + 1, dtype=torch.float32)
        decay = torch.exp(-6 * math.log(10) * lag[None, None] / (rt60[..., None] * self.frame_rate))  # power: 60 dB
        decay = decay / decay.sum(dim=2, keepdim=True) * 10 ** (-_uniform(n, self.o.drr) / 10).view(n, 1, 1)
        power = torch.exp(x.double())  # double: float32 FFT noise (1e-7 of the peak) would leak before a sound
        size = 2 * frames
        tail = torch.fft.irfft(torch.fft.rfft(power, size) * torch.fft.rfft(decay.to(x.device).double(), size), size)
        # decay[0] is one frame after the sound: the tail starts a frame later (the direct sound is frame 0)
        tail = F.pad(tail[..., :frames - 1], (1, 0))
        wet = torch.log(power + tail.clamp(min=0)).float()
        use = (torch.rand(n) < self.o.reverb).to(x.device).view(n, 1, 1)
        return torch.where(use, wet, x)

    def response(self, n: int) -> torch.Tensor:
        """(n, bins) random channel gains, natural-log power: telephone, cheap microphone or equaliser."""
        kind = torch.randint(0, 3, (n, 1))
        telephone, microphone, equaliser = self.telephone(n), self.microphone(n), self.equaliser(n)
        return torch.where(kind == 0, telephone, torch.where(kind == 1, microphone, equaliser))

    def _hz(self) -> torch.Tensor:
        return self.centres.cpu()[None].clamp(min=1.0)

    def telephone(self, n: int) -> torch.Tensor:
        """A band-pass from 250-400 Hz to 3000-3800 Hz, 4th-order Butterworth edges."""
        f = self._hz()
        low, high = _uniform(n, (250, 400))[:, None], _uniform(n, (3000, 3800))[:, None]
        return -torch.log1p((low / f) ** 8) - torch.log1p((f / high) ** 8)

    def microphone(self, n: int) -> torch.Tensor:
        """A small capsule: 2nd-order high-pass (100-600 Hz) and low-pass (3.5-7 kHz), a 3-10 dB resonance."""
        f = self._hz()
        cut_low, cut_high = _uniform(n, (100, 600))[:, None], _uniform(n, (3500, 7000))[:, None]
        peak, peak_db = _uniform(n, (1000, 5000))[:, None], _uniform(n, (3, 10))[:, None]
        resonance = peak_db * LN10_DB * torch.exp(-0.5 * (torch.log2(f / peak) / 0.4) ** 2)
        return -torch.log1p((cut_low / f) ** 4) - torch.log1p((f / cut_high) ** 4) + resonance

    def equaliser(self, n: int) -> torch.Tensor:
        """±6 dB at 5 points evenly over the bins, linear between them."""
        points = (torch.rand(n, 1, 5) * 2 - 1) * 6 * LN10_DB
        return F.interpolate(points, size=self.centres.numel(), mode="linear", align_corners=True)[:, 0]

    def line(self, x: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
        """With probability ``channel``: a random response, then the clip's floor level added back."""
        n = x.shape[0]
        filtered = torch.logaddexp(x + self.response(n).to(x.device)[..., None], floor)
        use = (torch.rand(n) < self.o.channel).to(x.device).view(n, 1, 1)
        return torch.where(use, filtered, x)

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """With probability ``recorded_noise``: a recorded noise clip, rolled in time, at a random SNR."""
        if self._noise is None:
            self._noise = self._load_noise().float()
        n, bins, frames = x.shape
        pick = torch.randint(0, self._noise.shape[0], (n,))
        roll = torch.randint(0, frames, (n,))
        index = (torch.arange(frames)[None] + roll[:, None]) % frames
        noise = self._noise[pick][:, :, :frames].gather(2, index[:, None].expand(n, bins, frames)).to(x.device)
        snr = _uniform(n, self.o.snr).to(x.device).view(n, 1, 1)
        scale = (torch.logsumexp(x.flatten(1), 1) - torch.logsumexp(noise.flatten(1), 1)).view(n, 1, 1)
        mixed = torch.logaddexp(x, noise + scale - snr * LN10_DB)
        use = (torch.rand(n) < self.o.recorded_noise).to(x.device).view(n, 1, 1)
        return torch.where(use, mixed, x)
