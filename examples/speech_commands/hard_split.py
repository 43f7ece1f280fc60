"""The hard split of the speech-commands corpus (``make_data.py --hard``): train on some eSpeak NG voices, test on
the most different speech that ships on a Debian machine.

* train / validation: ``--voices`` eSpeak NG variants (not of the held-out families below), three English accents,
  ordinary speeds (130-210 words a minute) and pitches;
* ``variants``: every variant of the held-out families (Klatt formant voices, whisper, croak, robots, ...), with
  the five English accents training never heard;
* ``foreign``: those variants with other languages' voices (German, French, Spanish, ...) reading the English
  words by their own spelling rules: a foreign accent;
* ``extreme``: unseen variants of the training families at extreme speeds (80-110 or 250-320) and pitches;
* ``flite``, ``festival``: the same words from two other speech engines (Debian's ``flite`` with its five voices,
  ``festival`` with its installed English voices), at random durations;
* ``channel``: clips of ``variants`` and ``flite`` through sox: a telephone line (``sinc 300-3400``, 8 kHz),
  a room (``reverb``), both, or a cheap microphone (``highpass``, ``lowpass``, clipping ``overdrive``).

Every clip gets the same treatment as the rest (trimmed, placed at random in one second, background noise at a
random SNR, a random level), so only the voice, the engine or the channel differs. Needs ``apt-get install flite
festival festvox-kallpc16k sox``; a missing engine's set is left out with a message.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HELD_OUT_FAMILIES = {"klatt", "whisper", "whisperf", "croak", "robosoft", "UniRobot", "anikaRobot", "Demonic",
                     "RicishayMax", "Storm"}
TRAIN_ACCENTS = ["en-us", "en", "en-gb-x-rp"]
TEST_ACCENTS = ["en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
FOREIGN = ["de", "fr", "es", "it", "pl", "nl", "pt-BR", "sv", "cs", "ro"]
FLITE_VOICES = ["kal", "kal16", "awb", "rms", "slt"]
FESTIVAL_VOICES = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]
CHANNELS = {"telephone": ["sinc", "300-3400", "rate", "8000"], "room": ["reverb", "70", "50", "100"],
            "telephone+room": ["reverb", "60", "50", "80", "sinc", "300-3400", "rate", "8000"],
            "cheap microphone": ["highpass", "500", "lowpass", "3500", "overdrive", "10"]}


def family(variant: str) -> str:
    return re.sub(r"\d+$", "", variant)


def _resampled(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = np.gcd(rate, target)
    return resample_poly(x.astype(np.float64), target // g, rate // g) if rate != target else x.astype(np.float64)


def flite(word: str, voice: str, stretch: float, scratch: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    path = scratch / "flite.wav"
    subprocess.run(["flite", "-voice", voice, "-t", word, "-o", str(path), "--setf", f"duration_stretch={stretch}"],
                   check=True, capture_output=True)
    x, rate = sf.read(path, dtype="int16")
    return x, rate


def festival(words: list[str], voice: str, stretch: float, scratch: Path) -> list[tuple[np.ndarray, int]]:
    """All ``words`` in one festival process (its start-up is most of the cost)."""
    import soundfile as sf

    lines = [f"(voice_{voice})", f"(Parameter.set 'Duration_Stretch {stretch})"]
    lines += [f'(utt.save.wave (SynthText "{w}") "{scratch / f"{i}.wav"}" \'riff)' for i, w in enumerate(words)]
    script = scratch / "say.scm"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    subprocess.run(["festival", "-b", str(script)], check=True, capture_output=True, timeout=600)
    return [sf.read(scratch / f"{i}.wav", dtype="int16") for i in range(len(words))]


def make_hard(out: Path, voices: int, takes: int, seed: int, words: list[str],
              snr_db: tuple[float, float] = (10.0, 30.0)) -> pd.DataFrame:
    """Write the clips and ``commands.csv`` (columns audio, word, voice, accent, set, split) under ``out``."""
    import soundfile as sf
    from make_data import SAMPLE_RATE, Speaker, clip

    rng = np.random.default_rng(seed)
    speaker = Speaker()
    variants = speaker.variants()
    held_out = [v for v in variants if family(v) in HELD_OUT_FAMILIES]
    pool = list(rng.permutation([v for v in variants if family(v) not in HELD_OUT_FAMILIES]))
    train_voices, unseen = sorted(pool[:voices]), sorted(pool[voices:voices + 20])
    validation = set(rng.choice(train_voices, size=max(1, round(0.15 * len(train_voices))), replace=False))
    rows: list[dict] = []

    def save(samples: np.ndarray, rate: int, name: str, word: str, voice: str, accent: str, group: str) -> None:
        if samples.size == 0 or np.abs(samples).max() == 0:
            return  # a voice that says nothing for this word: no clip rather than a mislabelled one
        x = _resampled(samples, rate, SAMPLE_RATE)
        relative = Path("clips") / group / word / f"{name}.wav"
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        sf.write(out / relative, clip(x, rng, snr_db), SAMPLE_RATE, subtype="PCM_16")
        split = "train" if group == "train" and voice not in validation else "validation" if group == "train" \
            else "test"
        rows.append({"audio": relative.as_posix(), "word": word, "voice": voice, "accent": accent,
                     "set": "validation" if split == "validation" else group, "split": split})

    def espeak(group: str, chosen: list[str], accents: list[str], n: int, rates: list[tuple[int, int]],
               pitches: list[tuple[int, int]]) -> None:
        for voice in chosen:
            for word in words:
                for take in range(n):
                    accent = str(rng.choice(accents))
                    rate, pitch = rates[rng.integers(len(rates))], pitches[rng.integers(len(pitches))]
                    samples = speaker.say(word, f"{accent}+{voice}", int(rng.integers(*rate)),
                                          int(rng.integers(*pitch)), int(rng.integers(20, 91)))
                    save(samples, SAMPLE_RATE, f"{voice}_{accent}_{take}", word, voice, accent, group)

    espeak("train", train_voices, TRAIN_ACCENTS, takes, [(130, 211)], [(30, 71)])
    espeak("variants", held_out, TEST_ACCENTS, 1, [(130, 211)], [(30, 71)])
    espeak("foreign", held_out, FOREIGN, 1, [(130, 211)], [(30, 71)])
    espeak("extreme", unseen, TRAIN_ACCENTS + TEST_ACCENTS, 1, [(80, 111), (250, 321)], [(0, 21), (80, 100)])
    with tempfile.TemporaryDirectory(prefix="speech-hard-") as scratch:
        if shutil.which("flite"):
            for voice in FLITE_VOICES:
                for word in words:
                    for take in range(takes):
                        stretch = float(rng.uniform(0.8, 1.3))
                        save(*flite(word, voice, stretch, Path(scratch)), f"{voice}_{take}", word, voice, "flite",
                             "flite")
        else:
            print("flite is not installed (apt-get install flite): no flite set")
        if shutil.which("festival"):
            for voice in FESTIVAL_VOICES:
                for take in range(takes):
                    try:
                        said = festival(words, voice, float(rng.uniform(0.8, 1.3)), Path(scratch))
                    except (subprocess.SubprocessError, OSError) as error:
                        print(f"festival voice {voice} failed ({error}); left out")
                        break
                    for word, (samples, rate) in zip(words, said):
                        save(samples, rate, f"{voice}_{take}", word, voice, "festival", "festival")
        else:
            print("festival is not installed (apt-get install festival festvox-kallpc16k): no festival set")
    table = pd.DataFrame(rows)
    return pd.concat([table, channel(out, table, rng)], ignore_index=True)


def channel(out: Path, table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Half of the ``variants`` and ``flite`` clips again, each through one of sox's channels at random."""
    if not shutil.which("sox"):
        print("sox is not installed (apt-get install sox): no channel set")
        return table.iloc[:0]
    sources = table[table["set"].isin(["variants", "flite"])]
    sources = sources.iloc[rng.permutation(len(sources))[:len(sources) // 2]]
    rows = []
    names = list(CHANNELS)
    for _, row in sources.iterrows():
        name = names[int(rng.integers(len(names)))]
        relative = Path("clips") / "channel" / row["word"] / f"{Path(row['audio']).stem}_{row['set']}.wav"
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["sox", str(out / row["audio"]), "-b", "16", str(out / relative), *CHANNELS[name],
                        "channels", "1", "norm", "-3"], check=True, capture_output=True)
        rows.append({**row.to_dict(), "audio": relative.as_posix(), "accent": f"{row['accent']}; {name}",
                     "set": "channel"})
    return pd.DataFrame(rows)
