"""Audio that generalises: keyword spotting trained on some eSpeak NG voices, scored on speech it never heard —
held-out voice families, foreign voices, extreme speeds and pitches, two other speech engines, sox channels.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/audio_generalise.py [--voices 40] [--takes 2] [--epochs 30]
        [--configs all today no-speed ...] [--seeds 0] [--log build/audio_generalise.jsonl] [--table]

Data (nothing is downloaded): ``examples/speech_commands/make_data.py --hard`` (hard_split.py), written once under
build/bench_speech_hard/. Needs ``apt-get install flite festival festvox-kallpc16k festvox-kdlpc16k sox``.

Models, on the same training and validation clips:
* Lamina, the example config (examples/speech_commands/config.yaml) with its audio options set per ablation:
  ``all`` (the defaults: every augmentation and per-utterance normalisation), ``today`` (before this work: shift,
  gain, synthetic noise and SpecAugment only, per-bin dataset normalisation), ``none`` (no augmentation at all),
  and ``no-X``: ``all`` with one part X off (speed, tempo, pitch, vtlp, reverb, channel, cmvn);
* compare's classical counterpart: per clip the mean and std of 20 MFCCs and of their deltas (lamina.compare's own
  features) → LightGBM with early stopping on validation, fitted once.

Each run appends one JSON line to ``--log`` (so a long ablation survives an interruption); ``--table`` prints the
accuracy per test set from the log: the median over seeds, and the range when there are several.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "speech_commands"))

import lamina  # noqa: E402
from lamina.compare import deep_row, features  # noqa: E402
from lamina.config import Config  # noqa: E402
from lamina.data.load import load_splits  # noqa: E402

DATA = ROOT / "build" / "bench_speech_hard"
SETS = ["validation", "variants", "foreign", "extreme", "flite", "festival", "channel"]
OFF = {"speed": {"speed": [1, 1]}, "tempo": {"tempo": [1, 1]}, "pitch": {"pitch": 0}, "vtlp": {"vtlp": [1, 1]},
       "reverb": {"reverb": 0}, "channel": {"channel": 0}, "cmvn": {"normalise": "dataset"}}
TODAY = {k: v for part in OFF.values() for k, v in part.items()}
CONFIGS = {"all": {}, "today": TODAY, "none": {"augment": False, "normalise": "dataset"},
           **{f"no-{name}": change for name, change in OFF.items()}}


def dataset(voices: int, takes: int, seed: int) -> Path:
    from hard_split import make_hard
    from make_data import WORDS

    folder = DATA / f"v{voices}_t{takes}_s{seed}"
    if not (folder / "commands.csv").exists():
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        table = make_hard(folder, voices, takes, seed, WORDS)
        table.to_csv(folder / "commands.csv", index=False)
        print(f"generated {len(table)} clips in {time.perf_counter() - started:.0f} s under {folder}")
    return folder


def config_for(folder: Path, name: str, epochs: int | None, seed: int) -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "examples" / "speech_commands" / "config.yaml").read_text())
    config["data"]["path"] = str(folder / "commands.csv")
    config["inputs"][0]["options"].update(CONFIGS[name])
    config["trainer"]["seed"] = seed
    if epochs:
        config["trainer"]["epochs"] = epochs
    return config


def by_set(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {s: frame[frame["set"] == s] for s in SETS if (frame["set"] == s).any()}


def lamina_run(folder: Path, name: str, epochs: int | None, seed: int, tests: dict[str, pd.DataFrame]
               ) -> tuple[dict[str, Any], Any]:
    config = config_for(folder, name, epochs, seed)
    with tempfile.TemporaryDirectory(prefix="lamina-bench-") as scratch:
        started = time.perf_counter()
        predictor = lamina.train(config, output=Path(scratch) / "run", verbose=False)
        seconds = time.perf_counter() - started
        accuracy = {s: deep_row(predictor, {"test": f}, seconds)[0]["metrics"]["accuracy"] for s, f in tests.items()}
    return {"model": f"lamina {name}", "seed": seed, "train_seconds": seconds, "accuracy": accuracy}, predictor


def lightgbm_run(predictor: Any, frames: dict[str, pd.DataFrame], tests: dict[str, pd.DataFrame], seed: int
                 ) -> dict[str, Any]:
    """compare's counterpart: MFCC statistics → LightGBM, early-stopped on validation."""
    import lightgbm as lgb

    output = predictor.preprocessor.outputs[0]
    y = {k: output.transform(f[output.name]).numpy() for k, f in frames.items()}
    started = time.perf_counter()
    x = {k: features(predictor, frames[k])[0] for k in ("train", "validation")}
    model = lgb.LGBMClassifier(n_estimators=1000, random_state=seed, n_jobs=1, verbose=-1)
    model.fit(x["train"], y["train"], eval_X=(x["validation"],), eval_y=(y["validation"],),
              callbacks=[lgb.early_stopping(50, verbose=False)])
    seconds = time.perf_counter() - started
    accuracy = {}
    for s, f in tests.items():
        predicted = model.predict(features(predictor, f)[0])
        accuracy[s] = float((predicted == output.transform(f[output.name]).numpy()).mean())
    return {"model": "MFCC stats + lightgbm", "seed": seed, "train_seconds": seconds, "accuracy": accuracy}


def table(log: Path) -> None:
    runs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    models = list(dict.fromkeys(r["model"] for r in runs))
    sets = [s for s in SETS if any(s in r["accuracy"] for r in runs)]
    hard = [s for s in sets if s != "validation"]
    print(f"{'model':<26}{'seeds':>6}" + "".join(f"{s:>11}" for s in sets) + f"{'hard mean':>11}{'train s':>9}")
    for m in models:
        mine = [r for r in runs if r["model"] == m]
        cells = []
        for s in sets:
            values = [r["accuracy"][s] for r in mine if s in r["accuracy"]]
            cells.append(f"{np.median(values):>11.3f}" if values else f"{'':>11}")
        mean = np.median([np.mean([r["accuracy"][s] for s in hard]) for r in mine])
        seconds = np.median([r["train_seconds"] for r in mine])
        print(f"{m:<26}{len(mine):>6}" + "".join(cells) + f"{mean:>11.3f}{seconds:>9.0f}")
    if any(len([r for r in runs if r["model"] == m]) > 1 for m in models):
        print("\nranges over seeds (min-max of the hard mean):")
        for m in models:
            means = [np.mean([r["accuracy"][s] for s in hard]) for r in runs if r["model"] == m]
            print(f"  {m:<26}{min(means):.3f}-{max(means):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voices", type=int, default=40)
    parser.add_argument("--takes", type=int, default=2)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: the example config's")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log", type=Path, default=ROOT / "build" / "audio_generalise.jsonl")
    parser.add_argument("--table", action="store_true", help="only print the table of the runs in --log")
    args = parser.parse_args()
    if args.table:
        return table(args.log)
    torch.set_num_threads(args.threads)
    folder = dataset(args.voices, args.takes, args.data_seed)
    parsed = Config.model_validate(config_for(folder, "all", args.epochs, 0))
    frames, _ = load_splits(parsed, folder)
    tests = {"validation": frames["validation"], **by_set(frames["test"])}
    print(f"torch threads {torch.get_num_threads()}; train {len(frames['train'])} clips; "
          + ", ".join(f"{s} {len(f)}" for s, f in tests.items()), flush=True)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:  # configs alternate within each seed, so load drifts hit them alike
        for i, name in enumerate(args.configs):
            row, predictor = lamina_run(folder, name, args.epochs, seed, tests)
            rows = [row] + ([lightgbm_run(predictor, frames, tests, seed)] if i == 0 else [])
            with args.log.open("a") as log:
                for r in rows:
                    log.write(json.dumps(r) + "\n")
                    print(json.dumps(r), flush=True)
    table(args.log)


if __name__ == "__main__":
    main()
