"""Write a speaker-identification corpus spoken by a real speech synthesiser (eSpeak NG): one person per voice.

A person is one of eSpeak NG's voice variants (m1, f3, klatt2, Annie, ...) with an English accent of their own,
picked at random per person (US, RP, Scottish, Caribbean, ...). Each clip is four words (of yes, no, up, ... nine) said
at a slightly different speed, pitch and pitch range each time, at a random point of the clip (1.6 s), in background
noise at a random SNR: text-independent speaker recognition, the same voice on different words. The speech
example's synthesiser, noise and clip placement are reused (``examples/speech_commands/make_data.py``).

- ``speakers/<voice>/<n>.wav``: the clips, one subfolder per person (``lamina init speakers/ --target person
  --task identity`` reads it, split by person);
- ``config.yaml``: trains on it; validation and test people are never heard in training.

Run ``python examples/speakers/make_data.py`` (writes beside this file; nothing is downloaded; needs ``pip install
espeakng-loader soundfile``). ``--speakers 12 --clips 6`` makes a tiny set for tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIG = """\
# Speaker identification on voices synthesised by eSpeak NG: run `python examples/speakers/make_data.py` first, then
#   lamina train examples/speakers/config.yaml
# The split is by person: validation and test speakers are never heard in training; the metrics (EER, TAR at FAR,
# rank-1 from templates of 3 clips) are on them.
name: speakers
data:
  path: speakers
  split: {method: group, column: label, fractions: [0.6, 0.2, 0.2], seed: 0}
inputs:
  - name: audio
    type: audio
    options:
      sample_rate: 16000
      duration: 1.0
      n_mels: 64
      normalise: dataset        # a clip's own per-bin mean is its speaker's spectral envelope: keep it
      widths: [64, 96, 128, 160]
      pitch: 0                  # pitch, speed and vocal-tract warps would change who is speaking
      speed: [1.0, 1.0]
      vtlp: [1.0, 1.0]
      reverb: 0.0
      channel: 0.0
      noise: 0.3
      time_masks: 1
      freq_masks: 0             # a masked band hides the spectral envelope that tells voices apart
outputs:
  - name: label
    type: identity
    options: {embedding_dim: 128, margin_loss: cosface, margin: 0.2, scale: 30, target_far: 0.001}
hidden:
  depth: 1
  width: 256
  dropout: 0.1
trainer:
  epochs: 30
  batch_size: 32
  learning_rate: 0.005
  schedule: onecycle
  folds: 1
  early_stopping: {patience: 30, metric: label.eer}
  seed: 0
"""


def speech_module() -> Any:
    """The speech example's script (its synthesiser and clip maker), loaded from its file."""
    path = HERE.parent / "speech_commands" / "make_data.py"
    spec = importlib.util.spec_from_file_location("speech_commands_make_data", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make(out: Path, speakers: int, clips: int, seed: int, words: int = 4,
         snr_db: tuple[float, float] = (15.0, 35.0)) -> dict[str, int]:
    """Write ``clips`` clips of ``words`` words each for each of ``speakers`` voices under ``out/speakers`` and
    ``out/config.yaml``; the number of clips written per voice."""
    import soundfile as sf

    speech = speech_module()
    rng = np.random.default_rng(seed)
    speaker = speech.Speaker()
    available = speaker.variants()
    chosen = sorted(rng.choice(available, size=min(speakers, len(available)), replace=False))
    written: dict[str, int] = {}
    for voice in chosen:
        accent = str(rng.choice(speech.ACCENTS))
        base_rate, base_pitch = int(rng.integers(140, 200)), int(rng.integers(35, 66))
        folder = out / "speakers" / voice
        folder.mkdir(parents=True, exist_ok=True)
        n = 0
        for take in range(clips * 2):  # a variant may say nothing for a word: try more words than needed
            if n == clips:
                break
            word = " ".join(str(w) for w in rng.choice(speech.WORDS, size=words))
            samples = speaker.say(word, f"{accent}+{voice}", rate=base_rate + int(rng.integers(-15, 16)),
                                  pitch=base_pitch + int(rng.integers(-5, 6)), pitch_range=int(rng.integers(40, 61)))
            if samples.size == 0 or np.abs(samples).max() == 0:
                continue
            sf.write(folder / f"{n:03d}_{word.replace(' ', '_')}.wav", speech.clip(samples, rng, snr_db), speech.SAMPLE_RATE,
                     subtype="PCM_16")
            n += 1
        written[voice] = n
    # a clip is at least a second, longer where its words are: the config's duration covers most of them
    duration = 1.0 if words == 1 else round(0.3 * words + 0.4, 1)
    (out / "config.yaml").write_text(CONFIG.replace("duration: 1.0", f"duration: {duration}"), encoding="utf-8")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into (default: beside this file)")
    parser.add_argument("--speakers", type=int, default=103, help="voices, one person each (eSpeak NG has 103)")
    parser.add_argument("--clips", type=int, default=40, help="clips per person (40 beat 20: docs/benchmarks.md)")
    parser.add_argument("--words", type=int, default=4, help="words per clip")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    written = make(args.out, args.speakers, args.clips, args.seed, args.words)
    print(f"wrote {sum(written.values())} clips of {len(written)} speakers to "
          f"{os.path.relpath(args.out / 'speakers')}/ and config.yaml")


if __name__ == "__main__":
    main()
