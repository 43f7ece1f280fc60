"""Write a speech-commands corpus spoken by a real speech synthesiser (eSpeak NG), as WAV files on disk.

Twenty keywords (yes, no, up, down, left, right, on, off, stop, go, zero ... nine), each spoken by many voices:
a voice is one of eSpeak NG's voice variants (m1, f3, klatt2, Annie, ...), heard with English accents picked at
random per take (US, RP, Scottish, Caribbean, ...), at random speeds, pitches and pitch ranges, placed at a random
point of a one-second clip, mixed with background noise (white, pink, brown or mains hum) at a random SNR and
written at 22,050 Hz, 16 bit, so the loader's resampler runs as it would on recorded data.

- ``clips/<word>/<voice>_<n>.wav``: the clips (also readable as a folder: ``lamina init clips/ --target label``);
- ``commands.csv``: columns audio (path relative to the CSV), word, voice, accent, split;
- ``config.yaml``: trains on it with ``data.split.method: column``.

The split is by voice: every clip of a voice is in the same split, so test accuracy is on voices never heard in
training. Run ``python examples/speech_commands/make_data.py`` (writes beside this file; nothing is downloaded;
needs ``pip install espeakng-loader soundfile``). ``--voices 8 --takes 1`` makes a tiny set for tests.

``--hard`` writes the hard split instead (hard_split.py): train on some eSpeak NG voices, test on held-out voice
families, foreign voices, extreme speeds and pitches, two other speech engines (flite, festival) and sox channels
(telephone, room, cheap microphone); the column ``set`` names each test set.
"""

from __future__ import annotations

import argparse
import ctypes
import os
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
         "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = ["en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
SAMPLE_RATE = 22050  # eSpeak NG's own rate
CLIP_SECONDS = 1.0

# espeak_lib.h
AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_Synth returns when the text is spoken; samples go to the callback
POS_CHARACTER, CHARS_UTF8 = 1, 1
RATE, VOLUME, PITCH, RANGE = 1, 2, 3, 4


class Speaker:
    """eSpeak NG through ctypes: one library per process (it keeps global state), synthesising to arrays."""

    _callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def __init__(self) -> None:
        import espeakng_loader

        self.data = Path(espeakng_loader.get_data_path())
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                          ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data).encode(), 0)
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"eSpeak NG failed to start (returned {rate}); reinstall espeakng-loader")
        self._chunks: list[np.ndarray] = []
        self._callback = self._callback_type(self._collect)  # kept referenced: the library holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes.POINTER(ctypes.c_short), count: int, events: ctypes.c_void_p) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        return 0  # 0: go on synthesising

    def variants(self) -> list[str]:
        """eSpeak NG's voice variants (the ``+name`` suffixes), without names a path or a CSV would mangle."""
        folder = self.data / "voices" / "!v"
        return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name.isidentifier())

    def say(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> np.ndarray:
        """int16 samples at 22,050 Hz of ``text`` spoken by ``voice`` (e.g. ``en-us+m3``)."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {voice!r}")
        for parameter, value in ((RATE, rate), (PITCH, pitch), (RANGE, pitch_range), (VOLUME, 100)):
            self.lib.espeak_SetParameter(parameter, value, 0)
        self._chunks = []
        encoded = text.encode()
        self.lib.espeak_Synth(encoded, len(encoded) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


def trim(x: np.ndarray, threshold: float = 0.02) -> np.ndarray:
    """Cut the leading and trailing near-silence eSpeak adds, so the word can be placed anywhere in the clip."""
    loud = np.flatnonzero(np.abs(x) > threshold * np.abs(x).max())
    return x[loud[0]:loud[-1] + 1] if loud.size else x


def noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS background noise: white, pink (1/f power), brown (1/f²) or mains hum (50/60 Hz and harmonics)."""
    if kind == "hum":
        t = np.arange(n) / SAMPLE_RATE
        base = rng.choice([50.0, 60.0])
        x = sum(rng.uniform(0.2, 1) / h * np.sin(2 * np.pi * base * h * t + rng.uniform(0, 2 * np.pi))
                for h in range(1, 6)) + 0.05 * rng.standard_normal(n)
    else:
        spectrum = np.fft.rfft(rng.standard_normal(n))
        f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
        spectrum *= {"white": np.ones_like(f), "pink": f ** -0.5, "brown": f ** -1.0}[kind]
        x = np.fft.irfft(spectrum, n)
    return x / np.sqrt(np.mean(x ** 2))


def clip(word: np.ndarray, rng: np.random.Generator, snr_db: tuple[float, float]) -> np.ndarray:
    """The word at a random point of a one-second clip (longer if the word is), noise at a random SNR, a random
    peak level: float in [-1, 1]."""
    speech = trim(word.astype(np.float64) / 32768)
    n = max(int(CLIP_SECONDS * SAMPLE_RATE), len(speech))
    out = np.zeros(n)
    start = int(rng.integers(0, n - len(speech) + 1))
    out[start:start + len(speech)] = speech
    speech_rms = np.sqrt(np.mean(speech ** 2)) + 1e-12
    snr = rng.uniform(*snr_db)
    out += noise(str(rng.choice(["white", "pink", "brown", "hum"])), n, rng) * speech_rms / 10 ** (snr / 20)
    return out / np.abs(out).max() * 10 ** (rng.uniform(-12, -1) / 20)


def split_voices(voices: list[str], rng: np.random.Generator) -> dict[str, str]:
    """About 70 / 15 / 15 % of the voices for train / validation / test (at least one each)."""
    order = list(rng.permutation(voices))
    n_test = max(1, round(0.15 * len(order)))
    n_val = max(1, round(0.15 * len(order)))
    return {v: "test" if i < n_test else "validation" if i < n_test + n_val else "train" for i, v in enumerate(order)}


CONFIG = """\
# Keyword spotting on speech synthesised by eSpeak NG: run `python examples/speech_commands/make_data.py` first, then
#   lamina train examples/speech_commands/config.yaml
# The split column puts every clip of a voice in one split: test accuracy is on voices never heard in training.
name: speech_commands
data:
  path: commands.csv
  split:
    method: column
    column: split
inputs:
  - name: audio
    type: audio
    options:
      sample_rate: 16000
      duration: 1.0
      n_mels: 40
      features: logmel              # or mfcc
      widths: [32, 48, 64, 96]      # stem, then residual blocks of temporal convolutions
      dropout: 0.1
      shift: 0.1                    # augmentation, in training only
      gain: 6
      noise: 0.5
      snr: [5, 30]
      speed: [0.9, 1.1]             # speaker, room and channel augmentation (audio_augment.py)
      tempo: [0.85, 1.15]
      pitch: 2                      # semitones
      vtlp: [0.9, 1.1]              # vocal-tract-length warp
      reverb: 0.5                   # probability of a synthetic room, rt60 [0.1, 0.8] s
      channel: 0.5                  # probability of a telephone band, cheap microphone or EQ
      # noise_dir: noise/           # a folder of recorded noise clips to mix in
      normalise: utterance          # each clip's own mean per bin and std (or: dataset)
outputs:
  - {name: word, type: category}
hidden:
  depth: 1
  width: 128
  dropout: 0.2
trainer:
  epochs: 12
  batch_size: 64
  learning_rate: 0.003
  schedule: onecycle
  early_stopping: {patience: 12, metric: loss}
  seed: 0
"""


def make(out: Path, voices: int, takes: int, seed: int, snr_db: tuple[float, float] = (10.0, 30.0),
         words: list[str] | None = None) -> pd.DataFrame:
    """Write the clips, ``commands.csv`` and ``config.yaml`` under ``out``; the table."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    speaker = Speaker()
    available = speaker.variants()
    chosen = sorted(rng.choice(available, size=min(voices, len(available)), replace=False))
    split = split_voices(chosen, rng)
    rows = []
    for voice in chosen:
        for word in words or WORDS:
            for take in range(takes):
                accent = str(rng.choice(ACCENTS))
                samples = speaker.say(word, f"{accent}+{voice}", rate=int(rng.integers(120, 231)),
                                      pitch=int(rng.integers(20, 81)), pitch_range=int(rng.integers(20, 91)))
                if samples.size == 0 or np.abs(samples).max() == 0:
                    continue  # a variant that says nothing for this word: no clip rather than a mislabelled one
                relative = Path("clips") / word / f"{voice}_{take}.wav"
                (out / relative).parent.mkdir(parents=True, exist_ok=True)
                sf.write(out / relative, clip(samples, rng, snr_db), SAMPLE_RATE, subtype="PCM_16")
                rows.append({"audio": relative.as_posix(), "word": word, "voice": voice, "accent": accent,
                             "split": split[voice]})
    table = pd.DataFrame(rows)
    table.to_csv(out / "commands.csv", index=False)
    (out / "config.yaml").write_text(CONFIG, encoding="utf-8")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into (default: beside this file)")
    parser.add_argument("--voices", type=int, default=100, help="voice variants (eSpeak NG has about 100)")
    parser.add_argument("--takes", type=int, default=3, help="renditions of each word per voice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hard", action="store_true", help="the hard split (other engines, voices, channels)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.hard:
        from hard_split import make_hard

        table = make_hard(args.out, args.voices, args.takes, args.seed, WORDS)
        table.to_csv(args.out / "commands.csv", index=False)
        (args.out / "config.yaml").write_text(CONFIG, encoding="utf-8")
    else:
        table = make(args.out, args.voices, args.takes, args.seed)
    counts = table.groupby("set" if args.hard else "split")["voice"].agg(["nunique", "size"])
    print(f"wrote {len(table)} clips to {os.path.relpath(args.out / 'clips')}/ and commands.csv, config.yaml; "
          + ", ".join(f"{s}: {r['size']} clips of {r['nunique']} voices" for s, r in counts.iterrows()))


if __name__ == "__main__":
    main()
