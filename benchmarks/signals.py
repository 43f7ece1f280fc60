"""Signals, audio part: keyword spotting on speech synthesised by eSpeak NG, scored on voices never heard in training.

    .venv/bin/python benchmarks/signals.py [--voices 100] [--takes 3] [--epochs N] [--threads 1]

Data (nothing is downloaded): examples/speech_commands/make_data.py writes 20 keywords (yes, no, up, down, left,
right, on, off, stop, go, zero ... nine) spoken by ``--voices`` eSpeak NG voice variants with random English
accents, speeds, pitches and background noise, as 22,050 Hz WAV files under build/bench_speech/. The split is by
voice (about 70 / 15 / 15 %): every test clip is a voice the models never heard.

Models, on exactly the same split (``lamina.compare``'s machinery, as ``lamina compare`` runs it):
* Lamina: the example config (examples/speech_commands/config.yaml): log-mel → TC-ResNet, augmentation;
* the classical counterpart: per clip, the mean and std of 20 MFCCs and of their deltas (computed from the same
  decoded, resampled log-mel), → LightGBM (early stopping on validation), a logistic regression, and an RBF SVM;
* a stronger classical model, beyond ``lamina compare``: the 20 MFCCs averaged over 10 equal stretches of the clip
  (so the order of the sounds counts: "on" against "no") → an RBF SVM.

Figures: test accuracy (unseen voices), training minutes (Lamina: all of ``lamina.train`` — decoding, features,
fitting, training, scoring; classical: feature extraction of train + validation and the fit) and clips/s at
prediction (decoding and features included: a fresh model directory has no cache). Ratios are Lamina's over the
best classical model's. One torch thread by default: on a shared 2-core machine a second OpenMP thread loses more to
waiting than it gains.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "speech_commands"))

import lamina  # noqa: E402
from lamina.compare import counterparts, deep_row, features  # noqa: E402
from lamina.config import Config  # noqa: E402
from lamina.data.load import load_splits  # noqa: E402
from lamina.inputs.audio_encoder import dct_matrix  # noqa: E402

DATA = ROOT / "build" / "bench_speech"
SEGMENTS = 10


def dataset(voices: int, takes: int, seed: int) -> Path:
    """The generated corpus for these settings, reused when it is already on disk."""
    from make_data import make

    folder = DATA / f"v{voices}_t{takes}_s{seed}"
    if not (folder / "commands.csv").exists():
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        table = make(folder, voices, takes, seed)
        print(f"generated {len(table)} clips in {time.perf_counter() - started:.0f} s under {folder}")
    return folder


def segments(predictor: Any, frame: pd.DataFrame, parts: int = SEGMENTS) -> np.ndarray:
    """20 MFCCs averaged over ``parts`` equal stretches of the clip: the stats above plus the order of the sounds."""
    t = predictor.preprocessor.inputs[0]
    logmel = t.transform(frame[t.name]).numpy().astype(np.float32)
    mfcc = np.einsum("kb,nbt->nkt", dct_matrix(logmel.shape[1], 20).numpy(), logmel)
    return np.concatenate([s.mean(2) for s in np.array_split(mfcc, parts, axis=2)], axis=1)


def svm(predictor: Any, frames: dict[str, pd.DataFrame], name: str, extract: Callable[..., np.ndarray]
        ) -> dict[str, Any]:
    """An RBF SVM on standardised features."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    output = predictor.preprocessor.outputs[0]
    started = time.perf_counter()
    x = extract(predictor, frames["train"])
    model = make_pipeline(StandardScaler(), SVC(C=10)).fit(x, output.transform(frames["train"][output.name]).numpy())
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    x_test = extract(predictor, frames["test"])
    predicted = model.predict(x_test)
    predict_seconds = time.perf_counter() - started
    truth = output.transform(frames["test"][output.name]).numpy()
    return {"model": name, "train_seconds": train_seconds, "predict_seconds": predict_seconds,
            "metrics": {"rows": len(truth), "accuracy": float((predicted == truth).mean())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voices", type=int, default=100)
    parser.add_argument("--takes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: the example config's")
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0 keeps torch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = dataset(args.voices, args.takes, args.seed)
    config = yaml.safe_load((ROOT / "examples" / "speech_commands" / "config.yaml").read_text())
    config["data"]["path"] = str(folder / "commands.csv")
    if args.epochs:
        config["trainer"]["epochs"] = args.epochs
    parsed = Config.model_validate(config)
    frames, _ = load_splits(parsed, folder)
    table = pd.read_csv(folder / "commands.csv")
    voices = table.groupby("split")["voice"].nunique()
    assert not set(table[table.split == "test"].voice) & set(table[table.split == "train"].voice)
    print(f"torch threads: {torch.get_num_threads()}; " + ", ".join(
        f"{name}: {len(frames[name])} clips of {voices[name]} voices" for name in ("train", "validation", "test")))

    with tempfile.TemporaryDirectory(prefix="lamina-bench-") as scratch:
        started = time.perf_counter()
        predictor = lamina.train(config, output=Path(scratch) / "run", verbose=False)
        train_seconds = time.perf_counter() - started
        predictor.preprocessor.set_cache_dir(None)  # as a loaded model directory: prediction decodes every file
        rows = deep_row(predictor, frames, train_seconds)
        rows += counterparts(predictor, frames, parsed.trainer.seed)
        rows.append(svm(predictor, frames, "svm (rbf)", lambda p, f: features(p, f)[1]))
        rows.append(svm(predictor, frames, "svm (rbf)", segments))

    deep, classical = rows[0], rows[1:]  # the best classical row is the reference for the ratios
    best = max(classical, key=lambda r: r["metrics"]["accuracy"])
    print(f"\nspeech commands, 20 words, test on {voices['test']} unseen voices ({deep['metrics']['rows']} clips)")
    print(f"{'model':<34}{'accuracy':>9}{'error':>8}{'train min':>11}{'predict clips/s':>17}")
    for r in rows:
        name = ("Lamina (log-mel + TC-ResNet)" if r is deep else f"MFCC stats + {r['model']}" if r is not rows[-1]
                else f"MFCC {SEGMENTS} segments + {r['model']}")
        accuracy = r["metrics"]["accuracy"]
        print(f"{name:<34}{accuracy:>9.4f}{1 - accuracy:>8.4f}{r['train_seconds'] / 60:>11.2f}"
              f"{r['metrics']['rows'] / r['predict_seconds']:>17.0f}")
    d, b = deep["metrics"]["accuracy"], best["metrics"]["accuracy"]
    speed = (deep["metrics"]["rows"] / deep["predict_seconds"]) / (best["metrics"]["rows"] / best["predict_seconds"])
    print(f"\nLamina / best classical ({best['model']}): accuracy ×{d / b:.3f}, "
          f"error ×{(1 - d) / max(1 - b, 1e-9):.2f}, "
          f"training time ×{deep['train_seconds'] / best['train_seconds']:.1f}, prediction speed ×{speed:.2f}")
    print(f"goal ≥ 0.95 on unseen voices: {'met' if d >= 0.95 else 'NOT met'} ({d:.4f})")


if __name__ == "__main__":
    main()
