"""Decoding audio files into fixed-length log-mel spectrograms, cached by content as a float16 memory map.

Two stages: worker processes decode and resample waveforms (soundfile, SciPy, NumPy only: safe to fork from a
process that imported torch), then the features are computed in torch in this process, a chunk at a time, and
written to the cache. Kept apart from the type so tests can count decodes.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

PARALLEL_FROM = 256  # fewer files decode faster in-process than a pool starts
CACHE_VERSION = 1  # bump when decoding or features change, so old cache files are never read as new ones
LONG_FACTOR = 10  # a clip longer than this many times the duration is worth a warning: most of it is thrown away
MARGIN = 64  # source frames read beyond a crop on each side, so the resampler's edges fall outside the kept part
FEATURE_CHUNK = 256  # clips per torch STFT batch: bounded memory whatever the data set's size
LOG_FLOOR = 1e-10  # power floor before the log (-100 dB of full scale): silence stays finite, never -inf


@dataclass(frozen=True)
class Spec:
    """What a clip's features depend on besides the file's bytes."""

    sample_rate: int
    samples: int  # the fixed clip length after padding or centre-cropping
    n_fft: int
    hop_length: int
    win_length: int
    n_mels: int
    f_min: float
    f_max: float
    mel_scale: str  # slaney | htk

    @property
    def frames(self) -> int:
        return 1 + self.samples // self.hop_length  # torch.stft with center=True


class BadAudio(Exception):
    """A file that is not usable audio, with the reason a user reads."""


# --- waveforms ------------------------------------------------------------------------------------------------------


def resample(x: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling along axis 0 with SciPy's anti-aliasing FIR (Kaiser window): content above the new
    Nyquist frequency is filtered out, not folded back."""
    if source_rate == target_rate:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(source_rate, target_rate)
    return resample_poly(x, target_rate // g, source_rate // g, axis=0).astype(np.float32)


def fit_length(x: np.ndarray, samples: int) -> np.ndarray:
    """Pad with silence on both sides, or keep the centre, to exactly ``samples`` samples."""
    if len(x) >= samples:
        start = (len(x) - samples) // 2
        return x[start:start + samples]
    before = (samples - len(x)) // 2
    return np.pad(x, (before, samples - len(x) - before))


def read_wave(path: str, sample_rate: int, samples: int) -> tuple[np.ndarray, bool]:
    """A file as ``samples`` float32 mono samples at ``sample_rate``, and whether it was over ``LONG_FACTOR`` times
    that long. Only the centre part of a long file is read, so an hour-long recording costs no more than a clip."""
    import soundfile as sf

    if not os.path.exists(path):
        raise FileNotFoundError(path)
    if os.path.isdir(path):
        raise IsADirectoryError(path)
    if os.path.getsize(path) == 0:
        raise BadAudio("empty file (0 bytes)")
    try:
        handle = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        reason = " ".join(str(error).split(f"'{path}': ")[-1].split()).rstrip(".")[:100]  # libsndfile's words
        raise BadAudio(f"not an audio file soundfile can read ({reason}); WAV, FLAC or OGG expected") from error
    with handle:
        frames, rate = handle.frames, handle.samplerate
        if frames <= 0:
            raise BadAudio("no audio samples (0 frames)")
        wanted = math.ceil(samples * rate / sample_rate)  # source frames that make the target length
        long = frames > LONG_FACTOR * wanted
        if frames > wanted + 2 * MARGIN:
            handle.seek((frames - wanted) // 2 - MARGIN)
            data = handle.read(wanted + 2 * MARGIN, dtype="float32", always_2d=True)
        else:
            data = handle.read(dtype="float32", always_2d=True)  # ints of any width scaled to [-1, 1)
    if len(data) == 0:
        raise BadAudio("no audio samples could be read; the file may be truncated or damaged")
    if not np.isfinite(data).all():
        raise BadAudio("has NaN or infinite samples; the file is damaged")
    mono = data.mean(axis=1)  # mix-down: the average of the channels
    return fit_length(resample(mono, rate, sample_rate), samples), long


def describe_error(error: BaseException) -> str:
    if isinstance(error, BadAudio):
        return str(error)
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError):
        return "is a directory, not an audio file"
    text = " ".join(str(error).split()) or type(error).__name__
    return f"cannot decode the audio ({text[:120]}); the file may be truncated or damaged"


def _decode_rows(paths: list[str], start: int, target: str, spec: Spec) -> tuple[dict[int, str], list[int]]:
    """Decode ``paths`` into rows ``start...`` of the float32 waveform memmap at ``target``; failed and long rows."""
    out = np.memmap(target, dtype=np.float32, mode="r+", shape=(start + len(paths), spec.samples))
    failed: dict[int, str] = {}
    long: list[int] = []
    for offset, path in enumerate(paths):
        try:
            out[start + offset], is_long = read_wave(path, spec.sample_rate, spec.samples)
            if is_long:
                long.append(start + offset)
        except Exception as error:  # any failure of a user's file is reported per file, never a crash
            failed[start + offset] = describe_error(error)
    out.flush()
    del out
    return failed, long


def decode_all(paths: list[str], spec: Spec, target: str, workers: int) -> tuple[dict[int, str], list[int]]:
    """Decode every path into a new (n, samples) float32 memmap at ``target``; failed rows stay silent."""
    np.memmap(target, dtype=np.float32, mode="w+", shape=(len(paths), spec.samples)).flush()
    if len(paths) < PARALLEL_FROM or workers <= 1:
        return _decode_rows(paths, 0, target, spec)
    chunk = max(64, len(paths) // (workers * 4))
    # fork: workers start in milliseconds; they run only soundfile, SciPy and NumPy (no torch threads).
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    failed: dict[int, str] = {}
    long: list[int] = []
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        jobs = [pool.submit(_decode_rows, paths[i:i + chunk], i, target, spec) for i in range(0, len(paths), chunk)]
        for job in jobs:
            f, g = job.result()
            failed.update(f)
            long += g
    return failed, sorted(long)


# --- features -------------------------------------------------------------------------------------------------------


def hz_to_mel(f: np.ndarray | float, scale: str) -> np.ndarray:
    """HTK: 2595 log10(1 + f / 700). Slaney (Auditory Toolbox): linear below 1 kHz (3 per 200 Hz), logarithmic
    above (27 mels per factor 6.4), so 1 kHz is mel 15 on both of its pieces."""
    f = np.asarray(f, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    linear = f / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, linear)


def mel_to_hz(m: np.ndarray | float, scale: str) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    return np.where(m >= 15.0, 1000.0 * np.exp((m - 15.0) * np.log(6.4) / 27.0), m * 200.0 / 3)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float, scale: str
                   ) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangles on the mel scale, each peaking at 1 on its centre frequency and
    area-normalised (Slaney): the weights of each filter are divided by half its bandwidth in Hz, so wide
    high-frequency filters do not outweigh narrow low ones."""
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min, scale), hz_to_mel(f_max, scale), n_mels + 2), scale)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None] - lower) / (centre - lower)
    falling = (upper - bins[None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (upper - lower))


def log_mel(waves: torch.Tensor, spec: Spec, filterbank: torch.Tensor | None = None) -> torch.Tensor:
    """(n, samples) float waveforms → (n, n_mels, frames) natural-log mel power. The power is divided by the
    window's energy, so a full-scale sine reads the same whatever n_fft and window length."""
    if filterbank is None:
        filterbank = torch.from_numpy(mel_filterbank(spec.sample_rate, spec.n_fft, spec.n_mels, spec.f_min,
                                                     spec.f_max, spec.mel_scale)).float()
    window = torch.hann_window(spec.win_length, periodic=True, dtype=waves.dtype)
    stft = torch.stft(waves, spec.n_fft, spec.hop_length, spec.win_length, window, center=True,
                      pad_mode="constant", return_complex=True)
    power = stft.abs().square() / window.square().sum()
    return torch.log(torch.clamp(filterbank.to(waves.dtype) @ power, min=LOG_FLOOR))


def _features(waves_path: str, target: str, n: int, spec: Spec) -> None:
    waves = np.memmap(waves_path, dtype=np.float32, mode="r", shape=(n, spec.samples))
    out = np.memmap(target, dtype=np.float16, mode="w+", shape=(n, spec.n_mels, spec.frames))
    filterbank = torch.from_numpy(mel_filterbank(spec.sample_rate, spec.n_fft, spec.n_mels, spec.f_min,
                                                 spec.f_max, spec.mel_scale)).float()
    with torch.no_grad():
        for start in range(0, n, FEATURE_CHUNK):
            chunk = torch.from_numpy(np.array(waves[start:start + FEATURE_CHUNK]))
            out[start:start + len(chunk)] = log_mel(chunk, spec, filterbank).numpy().astype(np.float16)
    out.flush()
    del out, waves


# --- the cache ------------------------------------------------------------------------------------------------------


def content_key(paths: list[str], spec: Spec) -> str:
    """A key from every file's bytes and the spec: the same clips with the same features hit the same cache file."""
    digest = hashlib.blake2b(json.dumps([CACHE_VERSION, asdict(spec)]).encode(), digest_size=20)
    for path in paths:
        try:
            with open(path, "rb") as handle:
                file_digest = hashlib.blake2b(digest_size=16)
                for block in iter(lambda: handle.read(1 << 20), b""):
                    file_digest.update(block)
                digest.update(file_digest.digest())
        except OSError as error:  # a missing file is keyed by its name and error; decoding reports it
            digest.update(f"missing:{path}:{type(error).__name__}".encode())
    return digest.hexdigest()


@dataclass
class Loaded:
    features: np.ndarray  # (n, n_mels, frames) float16 log-mel
    failed: dict[int, str]  # row → why it could not be used
    long: list[int]  # rows over LONG_FACTOR times the duration, centre-cropped
    silent: list[int]  # rows whose samples are all zero: valid audio, kept


def _build(paths: list[str], spec: Spec, target: str, scratch: str, workers: int) -> dict:
    waves = os.path.join(scratch, "waves.f32")
    failed, long = decode_all(paths, spec, waves, workers)
    silent = [int(i) for i in np.flatnonzero(
        ~np.abs(np.memmap(waves, dtype=np.float32, mode="r", shape=(len(paths), spec.samples))).any(axis=1))
        if int(i) not in failed]
    _features(waves, target, len(paths), spec)
    return {"shape": [len(paths), spec.n_mels, spec.frames], "failed": {str(k): v for k, v in failed.items()},
            "long": long, "silent": silent}


def load_features(paths: list[str], spec: Spec, cache_dir: Path | None, workers: int) -> Loaded:
    """The log-mel features of every path. With a cache folder they are a copy-on-write memmap of ``<key>.f16``
    there (computed only when that file is missing); without one they are computed into memory."""
    shape = (len(paths), spec.n_mels, spec.frames)
    if not paths:
        return Loaded(np.zeros(shape, np.float16), {}, [], [])
    if cache_dir is None:
        with tempfile.TemporaryDirectory(prefix="lamina-audio-") as scratch:
            target = os.path.join(scratch, "features.f16")
            meta = _build(paths, spec, target, scratch, workers)
            features = np.array(np.memmap(target, dtype=np.float16, mode="r", shape=shape))
    else:
        cache_dir.mkdir(parents=True, exist_ok=True)
        key = content_key(paths, spec)
        data, meta_path = cache_dir / f"{key}.f16", cache_dir / f"{key}.json"
        if not (data.exists() and meta_path.exists()):
            with tempfile.TemporaryDirectory(prefix="lamina-audio-", dir=cache_dir) as scratch:
                partial = os.path.join(scratch, "features.f16")
                meta = _build(paths, spec, partial, scratch, workers)
                meta_path.write_text(json.dumps(meta), "utf-8")
                os.replace(partial, data)  # the data file appears only when whole: a crash never leaves half
        meta = json.loads(meta_path.read_text("utf-8"))
        # mode "c": torch.from_numpy needs a writable array; copy-on-write never touches the file.
        features = np.memmap(data, dtype=np.float16, mode="c", shape=shape)
    return Loaded(features, {int(k): v for k, v in meta["failed"].items()}, meta["long"], meta["silent"])
