"""Lamina's default deep model against LightGBM and logistic regression, on the split Lamina itself makes.

    .venv/bin/python benchmarks/classical.py [--seeds 3] [--threads 1] [--datasets breast_cancer default]

For each data set the config is the one ``lamina init`` writes (``lamina.infer.infer`` + ``config_text``: every
hidden/trainer setting at its default -- 2 x 128 residual blocks, 100 epochs, early stopping on validation loss with
patience 10, batch 64, AdamW 1e-3, cosine), and the frames come from ``lamina.data.load.load_splits`` with that
config: a stratified 70/15/15 split with seed 42, exactly what ``lamina train`` trains, tunes and scores on.

Models, all trained on the train split only:

* ``lamina``: ``lamina.training.fit`` (the loop ``lamina.train`` runs, minus writing the model directory), trainer
  seed 42 -- the default config, unchanged. With ``--seeds N`` > 1 it is also trained with seeds 43, 44, ... (the
  split stays the same) and a ``mean of N seeds`` row shows how much of a difference is the seed.
* ``lightgbm``: ``LGBMClassifier`` with default parameters (100 trees).
* ``lightgbm+es``: default parameters but up to 1000 trees, early stopping (50 rounds) on the validation split.
* ``logistic``: standardised inputs (``StandardScaler``), ``LogisticRegression(max_iter=1000)``.

Test metrics: ROC-AUC, PR-AUC (average precision), accuracy of each model's own decision (Lamina: the threshold it
tunes for F1 on validation; the others: 0.5) and accuracy at 0.5 for all. Train time is from frames to a fitted
model (Lamina's includes fitting its preprocessor and scoring every split, as ``fit`` does); predict time is from
the test frame to probabilities. One thread for torch and LightGBM by default (see ``overhead.py``: on this shared
2-core machine two OpenMP threads make small models randomly many times slower). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from sklearn import metrics as skm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import load_data  # noqa: E402

from lamina.config import Config, validate_config  # noqa: E402
from lamina.data.load import load_splits  # noqa: E402
from lamina.infer import config_text, infer  # noqa: E402
from lamina.training import fit  # noqa: E402


def default_config(name: str, frame: pd.DataFrame, target: str) -> Config:
    """The config ``lamina init DATA --target TARGET`` writes, read back as ``lamina train`` reads it."""
    text = config_text(infer(frame, [target]), "data.csv", name, len(frame))
    return validate_config(yaml.safe_load(text))


def features(config: Config, frame: pd.DataFrame, positives: dict[str, str]) -> np.ndarray:
    """The config's input columns as a float matrix: numbers as they are, binaries as 0/1."""
    columns = []
    for spec in config.inputs:
        values = frame[spec.name]
        columns.append((values.astype(str) == positives[spec.name]).to_numpy(np.float64) if spec.type == "binary"
                       else values.to_numpy(np.float64))
    return np.stack(columns, axis=1)


def scores(truth: np.ndarray, proba: np.ndarray, decision: np.ndarray) -> dict[str, float]:
    return {
        "roc_auc": skm.roc_auc_score(truth, proba),
        "pr_auc": skm.average_precision_score(truth, proba),
        "accuracy": skm.accuracy_score(truth, decision),
        "acc@0.5": skm.accuracy_score(truth, proba >= 0.5),
    }


def run_lamina(config: Config, frames: dict[str, pd.DataFrame], seed: int, target: str) -> dict:
    config = config.model_copy(update={"trainer": config.trainer.model_copy(update={"seed": seed})})
    started = time.perf_counter()
    fitted = fit(config, frames, verbose=False)
    train_s = time.perf_counter() - started
    predictor = fitted.predictor
    test = frames["test"]
    started = time.perf_counter()
    predicted = predictor.predict(test)
    predict_s = time.perf_counter() - started
    output = predictor.preprocessor.outputs[0]
    negative, positive = output.state["classes"]
    truth = (test[target].astype(str) == positive).to_numpy()
    proba = predicted[f"{target}_proba_{positive}"].to_numpy()
    result = scores(truth, proba, (predicted[target].astype(str) == positive).to_numpy())
    own = predictor.info["metrics"]["test"][target]  # Lamina's own scoring of the same predictions must agree
    assert abs(own["roc_auc"] - result["roc_auc"]) < 1e-9 and abs(own["accuracy"] - result["accuracy"]) < 1e-9
    binaries = {t.name: t.state["labels"][1] for t in predictor.preprocessor.inputs if t.kind == "binary"}
    return {**result, "train_s": train_s, "predict_s": predict_s, "positive": positive, "binaries": binaries,
            "note": f"best epoch {fitted.best_epoch}/{len(fitted.history)}, threshold {output.state['threshold']:.3f}"}


def run_lightgbm(x: dict[str, pd.DataFrame], y: dict[str, np.ndarray], config: Config, positives, threads: int,
                 early_stopping: bool) -> dict:
    import lightgbm as lgb

    params = {"random_state": 42, "verbose": -1, "n_jobs": threads or None}
    started = time.perf_counter()
    train_x = features(config, x["train"], positives)
    if early_stopping:
        model = lgb.LGBMClassifier(n_estimators=1000, **params)
        valid = (features(config, x["validation"], positives), y["validation"])
        # lightgbm 4.7 renamed eval_set to eval_X / eval_y
        evals = ({"eval_X": valid[0], "eval_y": valid[1]} if "eval_X" in inspect.signature(model.fit).parameters
                 else {"eval_set": [valid]})
        model.fit(train_x, y["train"], callbacks=[lgb.early_stopping(50, verbose=False)], **evals)
        note = f"{model.best_iteration_} trees"
    else:
        model = lgb.LGBMClassifier(**params)
        model.fit(train_x, y["train"])
        note = "100 trees"
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    proba = model.predict_proba(features(config, x["test"], positives))[:, 1]
    predict_s = time.perf_counter() - started
    return {**scores(y["test"], proba, proba >= 0.5), "train_s": train_s, "predict_s": predict_s, "note": note}


def run_logistic(x: dict[str, pd.DataFrame], y: dict[str, np.ndarray], config: Config, positives) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(features(config, x["train"], positives), y["train"])
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    proba = model.predict_proba(features(config, x["test"], positives))[:, 1]
    predict_s = time.perf_counter() - started
    return {**scores(y["test"], proba, proba >= 0.5), "train_s": train_s, "predict_s": predict_s,
            "note": f"{model[-1].n_iter_[0]} lbfgs iterations"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="Lamina trainer seeds: 42, 43, ... (1: the default only)")
    parser.add_argument("--threads", type=int, default=1, help="torch and LightGBM threads (0: their defaults)")
    parser.add_argument("--datasets", nargs="+", default=["breast_cancer", "default"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("lamina").setLevel(logging.ERROR)
    print(f"lamina vs classical models  {time.strftime('%Y-%m-%d %H:%M')}  python {platform.python_version()}  "
          f"torch {torch.__version__}  cpus {os.cpu_count()}  threads {args.threads or 'default'}  "
          f"load average {os.getloadavg()[0]:.2f}")
    data = load_data()
    frame, target = data["breast_cancer"]  # warm-up, untimed: the first fit in a process pays one-off start-up costs
    warm = default_config("warm", frame, target)
    run_lamina(warm.model_copy(update={"trainer": warm.trainer.model_copy(update={"epochs": 2})}),
               load_splits(warm, Path.cwd(), frame)[0], 42, target)
    summary = []
    for name in args.datasets:
        frame, target = data[name]
        config = default_config(name, frame, target)
        frames, _ = load_splits(config, Path.cwd(), frame)
        rows = {k: len(v) for k, v in frames.items()}
        positives_share = {k: float((v[target] == v[target].value_counts().idxmin()).mean()) for k, v in frames.items()}

        lamina_runs = [run_lamina(config, frames, 42 + i, target) for i in range(args.seeds)]
        positive = lamina_runs[0]["positive"]
        positives = lamina_runs[0]["binaries"]  # binary inputs: 1 for the label Lamina reads as positive
        y = {k: (v[target].astype(str) == positive).to_numpy() for k, v in frames.items()}
        results = [("lamina (seed 42)", lamina_runs[0])]
        if args.seeds > 1:
            mean = {k: statistics.mean(r[k] for r in lamina_runs)
                    for k in ("roc_auc", "pr_auc", "accuracy", "acc@0.5", "train_s", "predict_s")}
            aucs = [r["roc_auc"] for r in lamina_runs]
            results.append((f"lamina (mean, {args.seeds} seeds)",
                            {**mean, "note": f"ROC-AUC {min(aucs):.4f}..{max(aucs):.4f}"}))
        results.append(("lightgbm", run_lightgbm(frames, y, config, positives, args.threads, False)))
        results.append(("lightgbm+es", run_lightgbm(frames, y, config, positives, args.threads, True)))
        results.append(("logistic", run_logistic(frames, y, config, positives)))

        print(f"\n{name}: {len(config.inputs)} inputs ({', '.join(sorted({s.type for s in config.inputs}))}), "
              f"target {target!r} positive {positive!r}; rows train/validation/test "
              f"{rows['train']}/{rows['validation']}/{rows['test']}, positives "
              f"{'/'.join(f'{positives_share[k]:.1%}' for k in ('train', 'validation', 'test'))}")
        head = (f"  {'model':<26}{'ROC-AUC':>8}{'PR-AUC':>8}{'acc':>7}{'acc@0.5':>8}{'train s':>9}{'predict ms':>11}"
                f"  note")
        print(head)
        print("  " + "-" * (len(head) + 30))
        for label, r in results:
            print(f"  {label:<26}{r['roc_auc']:>8.4f}{r['pr_auc']:>8.4f}{r['accuracy']:>7.4f}{r['acc@0.5']:>8.4f}"
                  f"{r['train_s']:>9.2f}{1000 * r['predict_s']:>11.1f}  {r['note']}")
        by = dict(results)
        lam = by["lamina (seed 42)"]["roc_auc"]
        for other in ("lightgbm", "lightgbm+es"):
            summary.append((name, other, 100 * (lam - by[other]["roc_auc"])))
            if args.seeds > 1:
                summary.append((name, f"{other} (lamina seed mean)",
                                100 * (by[f"lamina (mean, {args.seeds} seeds)"]["roc_auc"] - by[other]["roc_auc"])))

    print("\nROC-AUC of Lamina (seed 42) minus LightGBM, in points (goal: within 1 point, i.e. >= -1):")
    for name, other, diff in summary:
        verdict = "ok" if diff >= -1 else "MISSED"
        print(f"  {name:<14} vs {other:<30} {diff:+6.2f}  {verdict}")


if __name__ == "__main__":
    main()
