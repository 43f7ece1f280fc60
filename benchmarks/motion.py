"""Time series: BasicMotions (smartwatch accelerometer + gyroscope, 6 channels × 100 readings, 4 activities) —
Lamina's timeseries encoders (dilated CNN, bidirectional GRU) against classical models on per-channel summary
statistics (random forest, gradient boosting, logistic regression).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/motion.py [--encoders cnn gru transformer] [--seeds 5]

Data (nothing is downloaded): BasicMotions ships inside the `aeon` package (pip install aeon), written by
examples/basic_motions/make_data.py: the official 40 test rows; the official 40 training rows split 32 train /
8 validation (the last 2 of each activity). Every model learns from the same 32 rows: Lamina stops early on the 8;
the classical models fit on the 32 (they have no use for the 8), with the features ``lamina compare`` uses for this
type (``summary_features``: mean, std, min, max, quantiles, slope, roughness, length per channel, standardised with
the training statistics).

Figures on the 40 test rows: accuracy, median (and range) over seeds; training seconds (Lamina: all of
``lamina.train`` — reading, fitting, training, scoring; classical: features + fit). One torch thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "basic_motions"


def config(encoder: str, seed: int) -> dict:
    return {
        "name": f"motion_{encoder}_{seed}",
        "data": {"path": str(DATA / "motion.parquet"), "split": {"method": "column", "column": "split"}},
        "inputs": [{"name": "motion", "type": "timeseries", "options": {"encoder": encoder}}],
        "outputs": [{"name": "activity", "type": "category"}],
        "hidden": {"depth": 1, "width": 64, "dropout": 0.1},
        "trainer": {"epochs": 60, "batch_size": 8, "learning_rate": 0.003, "early_stopping": {"patience": 15},
                    "seed": seed, "threads": 1},
    }


def classical(seed: int) -> list[dict]:
    import pandas as pd
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from lamina.inputs.timeseries import TimeseriesInput, TimeseriesOptions, summary_features

    frame = pd.read_parquet(DATA / "motion.parquet")
    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    models = {
        "random forest": lambda: RandomForestClassifier(500, random_state=seed, n_jobs=1),
        "gradient boosting": lambda: GradientBoostingClassifier(random_state=seed),
        "logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    }
    rows = []
    for name, make in models.items():
        started = time.perf_counter()
        t = TimeseriesInput("motion", TimeseriesOptions())
        t.fit(train["motion"])
        model = make().fit(summary_features(t.transform(train["motion"]).numpy()), train["activity"])
        seconds = time.perf_counter() - started
        predicted = model.predict(summary_features(t.transform(test["motion"]).numpy()))
        rows.append({"model": name, "seed": seed, "accuracy": float(np.mean(predicted == test["activity"].to_numpy())),
                     "train_seconds": seconds})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", nargs="+", default=["cnn", "gru"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not (DATA / "motion.parquet").exists():
        subprocess.run([sys.executable, str(DATA / "make_data.py")], check=True)

    import lamina

    rows = []
    with tempfile.TemporaryDirectory() as out:
        for seed in range(args.seeds):
            for encoder in args.encoders:
                started = time.perf_counter()
                predictor = lamina.train(config(encoder, seed), output_dir=out, verbose=False, report=False)
                seconds = time.perf_counter() - started
                epochs = sum(1 for _ in open(Path(predictor.info["run_dir"]) / "metrics.jsonl"))
                rows.append({"model": f"lamina {encoder}", "seed": seed,
                             "accuracy": predictor.metrics["test"]["activity"]["accuracy"], "train_seconds": seconds,
                             "epochs": epochs})
                print(json.dumps(rows[-1]), flush=True)
            for r in classical(seed):
                rows.append(r)
                print(json.dumps(r), flush=True)

    models = list(dict.fromkeys(r["model"] for r in rows))
    summary = {m: {"accuracy": statistics.median(r["accuracy"] for r in rows if r["model"] == m),
                   "low": min(r["accuracy"] for r in rows if r["model"] == m),
                   "high": max(r["accuracy"] for r in rows if r["model"] == m),
                   "seconds": statistics.median(r["train_seconds"] for r in rows if r["model"] == m)}
               for m in models}
    best = max((m for m in models if not m.startswith("lamina")), key=lambda m: summary[m]["accuracy"])
    print(f"\nBasicMotions, official test split (40 rows), median of {args.seeds} seeds; ratios against the best "
          f"classical model ({best})")
    print("| model | accuracy (median) | min – max | train s (median) | accuracy ratio | time ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for m in models:
        s, b = summary[m], summary[best]
        print(f"| {m} | {s['accuracy']:.3f} | {s['low']:.3f} – {s['high']:.3f} | {s['seconds']:.2f} | "
              f"{s['accuracy'] / max(b['accuracy'], 1e-9):.3f} | {s['seconds'] / max(b['seconds'], 1e-9):.2f}× |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
