"""Audio: a column of audio file paths (WAV, FLAC, OGG), decoded with soundfile to mono at a fixed sample rate and
length, turned into log-mel spectrograms (or MFCCs), cached as float16, encoded by a small keyword-spotting CNN.

The fitted state is the duration and the per-bin (or per-coefficient) mean and std of the training features.
``transform`` returns float16 (n, n_mels, frames) natural-log mel power; with a cache folder it is a memory map of a
file keyed by the clips' content, so a second transform of the same files never decodes again.

Decisions about odd but readable files:

* any sample rate is resampled (polyphase, anti-aliased), any channel count mixed down to mono by the average;
* shorter clips are padded with silence on both sides, longer ones centre-cropped; a clip over ten times the
  duration is still used (its centre), and a warning counts them, as they usually mean a wrong file or column;
* a silent clip (every sample zero) is valid audio, and is kept: its log-mel is the floor level (-100 dB), finite,
  and the std used for normalisation has a floor, so silence never gives NaN or infinities;
* an unreadable, empty (0 bytes or 0 frames), missing or non-audio file is bad input: one line naming column, row
  and file, or with ``on_bad_input: skip`` the row is left out with a warning, as for images.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator
from torch import nn

from lamina.errors import LaminaError, row_name
from lamina.inputs.audio_augment import Axes, Perturb, PerturbOptions
from lamina.inputs.audio_classical import mfcc_statistics
from lamina.inputs.audio_decode import Loaded, Spec, hz_to_mel, load_features, mel_to_hz
from lamina.inputs.audio_encoder import Augment, AudioEncoder, dct_matrix, tc_resnet
from lamina.inputs.base import Options
from lamina.inputs.classical import Features
from lamina.inputs.files import FileInput

log = logging.getLogger("lamina")

MAX_AUTO_DURATION = 10.0  # seconds: the automatic duration never exceeds this, so CPU training stays practical
MIN_AUTO_DURATION = 0.1
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
STD_FLOOR = 0.1  # natural-log units (~0.4 dB): a bin that never changes (silence, a band-limited set) is not blown up


class AudioOptions(Options):
    sample_rate: int = Field(16000, ge=1000, le=192000, description="Hz; every file is resampled to it")
    duration: float | None = Field(None, gt=0, le=60, description="seconds per clip (pad or centre-crop); "
                                   f"default: the training clips' median, at most {MAX_AUTO_DURATION:g}")
    n_fft: int = Field(512, ge=16, le=8192)
    hop_length: int = Field(160, ge=1, description="samples between frames (10 ms at 16 kHz)")
    win_length: int = Field(400, ge=16, description="samples per window (25 ms at 16 kHz); at most n_fft")
    n_mels: int = Field(40, ge=2, le=256)
    f_min: float = Field(20.0, ge=0)
    f_max: float | None = Field(None, gt=0, description="Hz; default: half the sample rate")
    mel_scale: Literal["slaney", "htk"] = "slaney"
    features: Literal["logmel", "mfcc"] = Field("logmel", description="mfcc: the DCT of the log-mel, n_mfcc kept")
    n_mfcc: int = Field(20, ge=1)
    augment: bool = Field(True, description="random augmentation in training only (below)")
    shift: float = Field(0.1, ge=0, le=0.5, description="largest time shift, as a fraction of the clip")
    gain: float = Field(6.0, ge=0, le=40, description="largest gain change, dB")
    noise: float = Field(0.5, ge=0, le=1, description="probability of mixing in background noise")
    snr: tuple[float, float] = Field((5.0, 30.0), description="noise SNR range, dB")
    speed: tuple[float, float] = Field((0.9, 1.1), description="speed perturbation range (time and pitch together, "
                                       "a tape played faster); [1, 1] turns it off")
    tempo: tuple[float, float] = Field((0.85, 1.15), description="tempo range (the word faster, the pitch kept)")
    pitch: float = Field(2.0, ge=0, le=12, description="largest pitch shift, semitones (the formants kept)")
    vtlp: tuple[float, float] = Field((0.9, 1.1), description="vocal-tract-length warp of the frequency axis")
    reverb: float = Field(0.5, ge=0, le=1, description="probability of a synthetic room (exponential decay)")
    rt60: tuple[float, float] = Field((0.1, 0.8), description="reverberation time range, seconds")
    channel: float = Field(0.5, ge=0, le=1, description="probability of a random telephone, microphone or EQ "
                                                        "response")
    noise_dir: str | None = Field(None, description="a folder of recorded noise clips (WAV, FLAC, OGG) to "
                                                    "mix in, in training only")
    recorded_noise: float = Field(0.5, ge=0, le=1, description="probability of mixing in a clip of noise_dir")
    normalise: Literal["utterance", "dataset"] = Field("utterance", description="utterance: each clip's own mean "
                                                       "per bin and std (CMVN), which removes a fixed channel; "
                                                       "dataset: the training clips' per-bin mean and std")
    time_masks: int = Field(2, ge=0, le=10)
    time_mask: float = Field(0.1, ge=0, le=0.5, description="widest time mask, as a fraction of the frames")
    freq_masks: int = Field(2, ge=0, le=10)
    freq_mask: float = Field(0.15, ge=0, le=0.5, description="widest frequency mask, as a fraction of the bins")
    widths: list[int] = Field([32, 48, 64, 96], min_length=1, description="stem, then one residual block per "
                                                                       "further width, each halving the frames")
    kernel: int = Field(9, ge=1, le=31, description="the blocks' temporal kernel, in frames")
    dropout: float = Field(0.1, ge=0, lt=1)
    workers: int | None = Field(None, ge=0, description="decoding processes; default: the CPU count, at most 8")
    on_bad_input: Literal["error", "skip"] = Field("error", description="skip: leave out unreadable files, "
                                                                        "with a warning naming them")

    @model_validator(mode="after")
    def _consistent(self) -> AudioOptions:
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length {self.win_length} is over n_fft {self.n_fft}; make it at most n_fft")
        nyquist = self.sample_rate / 2
        f_max = self.f_max if self.f_max is not None else nyquist
        if not self.f_min < f_max <= nyquist:
            raise ValueError(f"need f_min < f_max <= sample_rate / 2 ({nyquist:g}); got {self.f_min:g} and {f_max:g}")
        if self.features == "mfcc" and self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc {self.n_mfcc} is over n_mels {self.n_mels}; make it at most n_mels")
        for name in ("snr", "speed", "tempo", "vtlp", "rt60"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name} range {[low, high]} is backwards; give [low, high]")
            if name != "snr" and low <= 0:
                raise ValueError(f"{name} range {[low, high]} must be above 0")
        return self


def _duration(path: str) -> float | None:
    """Seconds from the file header without decoding; None if unreadable (reported when the file is decoded)."""
    import soundfile as sf

    try:
        info = sf.info(path)
        return info.frames / info.samplerate if info.frames > 0 else None
    except Exception:
        return None


class AudioInput(FileInput):
    kind = "audio"
    Options = AudioOptions
    noun = "audio file"

    # --- fitting and transforming -----------------------------------------------------------------------------

    def spec(self) -> Spec:
        o = self.options
        return Spec(o.sample_rate, self.state["samples"], o.n_fft, o.hop_length, o.win_length, o.n_mels,
                    float(o.f_min), float(o.f_max if o.f_max is not None else o.sample_rate / 2), o.mel_scale)

    def _require_soundfile(self) -> None:
        if importlib.util.find_spec("soundfile") is None:  # else every file would fail with the same import error
            raise LaminaError(f"column '{self.name}': the audio type reads files with soundfile; pip install soundfile")

    def _load(self, values: pd.Series) -> Loaded:
        self._require_soundfile()
        paths = self._paths(values)
        loaded = load_features(paths, self.spec(), self.cache_dir, self._workers())
        for row, path in enumerate(paths):  # a missing value has no file to name
            if not path:
                loaded.failed[row] = "no audio path (missing value)"
        if loaded.long:
            rows = [r for r in loaded.long if r not in loaded.failed]
            if rows and not self.__dict__.setdefault("_warned_long", set()) >= set(map(str, values.iloc[rows])):
                self._warned_long.update(map(str, values.iloc[rows]))  # once per file, not once per transform
                log.warning("column '%s': %d clip(s) over 10x the %.3g s duration, centre-cropped (e.g. row %s %s); "
                            "check the column holds the clips you mean", self.name, len(rows),
                            self.state["samples"] / self.options.sample_rate, row_name(values.index[rows[0]]),
                            values.iloc[rows[0]])
        return loaded

    def fit(self, values: pd.Series) -> None:
        self._require_soundfile()
        o = self.options
        paths = self._paths(values)
        duration = o.duration
        if duration is None:
            lengths = [d for d in (_duration(p) for p in paths if p) if d is not None]
            if not lengths:
                raise LaminaError(f"column '{self.name}': no readable audio file in the training split; check the "
                                  "paths (WAV, FLAC or OGG)")
            duration = float(np.clip(np.median(lengths), MIN_AUTO_DURATION, MAX_AUTO_DURATION))
        samples = max(o.win_length, int(round(duration * o.sample_rate)))
        # Kept in the state so a model saved before utterance normalisation existed still normalises as it did.
        self.state = {"samples": samples, "normalise": o.normalise}
        if o.augment and o.noise_dir is not None:
            self.state["noise_files"] = self._noise_files(o.noise_dir)
        loaded = self._load(values)
        if loaded.failed and o.on_bad_input == "error":
            self._raise_first(values, loaded.failed)
        good = np.setdiff1d(np.arange(len(paths)), list(loaded.failed))
        if good.size == 0:
            raise LaminaError(f"column '{self.name}': no readable audio file in the training split; check the files")
        if loaded.silent:
            log.info("column '%s': %d silent clip(s) (every sample zero), kept as silence", self.name,
                     len(loaded.silent))
        # Per-bin statistics in chunks (float64 sums), so a memory-mapped set never has to fit in memory.
        dct = dct_matrix(o.n_mels, o.n_mfcc).double() if o.features == "mfcc" else None
        total = squares = None
        for start in range(0, good.size, 1024):
            chunk = torch.from_numpy(np.asarray(loaded.features[good[start:start + 1024]], dtype=np.float64))
            if dct is not None:
                chunk = torch.matmul(dct, chunk)
            s, q = chunk.sum(dim=(0, 2)), chunk.square().sum(dim=(0, 2))
            total, squares = (s, q) if total is None else (total + s, squares + q)
        count = good.size * loaded.features.shape[2]
        mean = total / count
        std = torch.sqrt(torch.clamp(squares / count - mean.square(), min=0))
        self.state["mean"] = [float(m) for m in mean]
        self.state["std"] = [float(max(s, STD_FLOOR)) for s in std]

    def failed(self, values: pd.Series) -> dict[int, str]:
        return self._load(values).failed

    def _noise_files(self, folder: str) -> list[str]:
        root = Path(folder).expanduser().resolve()
        files = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES) if root.is_dir() else []
        if not files:
            raise LaminaError(f"column '{self.name}': noise_dir {folder} holds no WAV, FLAC or OGG file; point it "
                              "at a folder of noise recordings or remove the option")
        return files

    def _noise_bank(self) -> torch.Tensor:
        """The recorded noise clips' log-mel, at the clips' length (longer ones centre-cropped)."""
        files = self.state["noise_files"]
        loaded = load_features(files, self.spec(), self.cache_dir, self._workers())
        if loaded.failed:
            row = min(loaded.failed)
            raise LaminaError(f"column '{self.name}': noise file {files[row]}: {loaded.failed[row]}; fix or "
                              "remove it from noise_dir")
        return torch.from_numpy(np.asarray(loaded.features, dtype=np.float32))

    def transform(self, values: pd.Series) -> torch.Tensor:
        loaded = self._load(values)
        if loaded.failed and self.options.on_bad_input == "error":
            self._raise_first(values, loaded.failed)
        return torch.from_numpy(loaded.features)  # with 'skip', rows not left out by usable() are silence

    # --- the encoder --------------------------------------------------------------------------------------------

    def _bins(self) -> int:
        return self.options.n_mfcc if self.options.features == "mfcc" else self.options.n_mels

    @property
    def width(self) -> int:
        return self.options.widths[-1]

    def encoder(self) -> nn.Module:
        o, s = self.options, self.state
        augment = Augment(o.shift, o.gain, o.noise, o.snr, o.time_masks, o.time_mask, o.freq_masks,
                          o.freq_mask) if o.augment else None
        dct = dct_matrix(o.n_mels, o.n_mfcc) if o.features == "mfcc" else None
        body = tc_resnet(self._bins(), o.widths, o.kernel, o.dropout)
        return AudioEncoder(body, self.width, s["mean"], s["std"], dct, augment, self._perturb(),
                            utterance=s.get("normalise", "dataset") == "utterance")

    def _perturb(self) -> Perturb | None:
        o, spec = self.options, self.spec()
        if not o.augment:
            return None
        edges = mel_to_hz(np.linspace(hz_to_mel(spec.f_min, o.mel_scale), hz_to_mel(spec.f_max, o.mel_scale),
                                      o.n_mels + 2), o.mel_scale)
        axes = Axes(tuple(float(c) for c in edges[1:-1]), spec.f_max, spec.sample_rate / spec.hop_length)
        noise = "noise_files" in self.state
        options = PerturbOptions(o.speed, o.tempo, o.pitch, o.vtlp, o.reverb, o.rt60, channel=o.channel,
                                 recorded_noise=o.recorded_noise if noise else 0.0, snr=o.snr)
        return Perturb(axes, options, self._noise_bank if noise else None)

    def classical_features(self, values: pd.Series) -> Features:
        """``lamina compare``: MFCC statistics per clip (``lamina.inputs.audio_classical``)."""
        return mfcc_statistics(self.name, self.transform(values).numpy())
