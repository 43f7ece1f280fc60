"""Series on small sets: Lamina's `lamina init` defaults against the time-series archives' reference classifiers, on
the official train/test splits of four sets aeon ships (ItalyPowerDemand, OSULeaf, ACSF1, PickupGestureWiimoteZ).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/series.py [--sets ItalyPowerDemand ...] [--seeds 5]
        [--variants default rocket inception cnn] [--log series.jsonl]

Each set's official files are written as a user would have them (train.parquet / test.parquet, columns ``series``
and ``label``, by lamina.data.ts_format). Lamina: `lamina init train.parquet --target label`, then `lamina train`
and `lamina evaluate <run> test.parquet`, as a new user would; a variant other than ``default`` sets options of the
series column (``encoder=inception``, ``augment=false``: the candidates the default is picked from) or of the trainer
(``trainer.batch_size=64``). Classical, fitted on the
whole official training file with the type's own standardisation (fitted on it): 1-NN Euclidean, 1-NN DTW (10 %
window), summary statistics + LightGBM (``lamina compare``'s features), and MiniRocket features + ridge
(RidgeClassifierCV, the published MiniRocket recipe; 10,000 features and the encoder's 4,000) as the random-kernel
reference.

Figures: test accuracy (and ROC-AUC for two classes), median and range over seeds; seconds per run. Results are
appended to ``--log`` as JSON lines, and runs already there are skipped, so an interrupted run picks up again.
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
import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SETS = ("ItalyPowerDemand", "PickupGestureWiimoteZ", "OSULeaf", "ACSF1")


def cli(*args: str, cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "lamina", *args], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    if done.returncode:
        raise SystemExit(f"lamina {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def lamina_run(folder: Path, variant: str, seed: int) -> dict:
    work = Path(tempfile.mkdtemp(dir=folder))
    for name in ("train.parquet", "test.parquet"):
        (work / name).symlink_to(folder / name)
    started = time.perf_counter()
    cli("init", "train.parquet", "--target", "label", cwd=work)
    config = yaml.safe_load((work / "config.yaml").read_text())
    for change in (c for c in variant.split(",") if c != "default"):  # e.g. encoder=inception,augment=false
        key, value = change.split("=")
        if key.startswith("trainer."):  # trainer.batch_size=64: undo one of init's choices
            config["trainer"][key.split(".", 1)[1]] = yaml.safe_load(value)
        else:
            config["inputs"][0].setdefault("options", {})[key] = yaml.safe_load(value)
    config["trainer"].update(seed=seed, threads=1)
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cli("train", "config.yaml", cwd=work)
    cli("evaluate", f"runs/{config['name']}", "test.parquet", "--json", "metrics.json", cwd=work)
    metrics = json.loads((work / "metrics.json").read_text())["label"]
    seconds = time.perf_counter() - started
    return {"work": str(work), "accuracy": metrics["accuracy"], "roc_auc": metrics.get("roc_auc"), "seconds": seconds,
            "accuracy_at_half": accuracy_at_half(work, config["name"]) if "threshold" in metrics else None,
            "options": config["inputs"][0].get("options", {}), "trainer": {k: config["trainer"][k] for k in (
                "epochs", "batch_size", "learning_rate")}}


def accuracy_at_half(work: Path, name: str) -> float:
    """A two-class model's test accuracy at threshold 0.5 instead of the one tuned on its few validation rows: what
    the threshold costs on a small set."""
    cli("predict", f"runs/{name}", "test.parquet", "-o", "predictions.csv", cwd=work)
    predicted = pd.read_csv(work / "predictions.csv")
    truth = pd.read_parquet(work / "test.parquet")["label"].astype(str).to_numpy()
    columns = [c for c in predicted.columns if c.startswith("label_proba_")]
    best = np.asarray([c.removeprefix("label_proba_") for c in columns])[predicted[columns].to_numpy().argmax(1)]
    return float((best == truth).mean())


def rescore(log_path: Path, data: Path) -> None:
    """Add ``accuracy_at_half`` to logged two-class Lamina runs that lack it (their model directories are kept)."""
    rows = [json.loads(line) for line in log_path.read_text().splitlines()]
    for problem in {r["set"] for r in rows}:
        works = {json.loads(p.read_text())["label"].get("roc_auc"): p.parent
                 for p in (data / problem).glob("tmp*/metrics.json")}  # a run is known by its ROC-AUC
        for row in rows:
            if row["set"] == problem and row.get("roc_auc") in works and "threshold" in json.loads(
                    (works[row["roc_auc"]] / "metrics.json").read_text())["label"]:
                row["accuracy_at_half"] = accuracy_at_half(works[row["roc_auc"]], "train")
    log_path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def classical_runs(folder: Path, seed: int, deterministic: bool) -> dict[str, dict]:
    import lightgbm as lgb
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.metrics import roc_auc_score

    from lamina.inputs.timeseries import TimeseriesInput, TimeseriesOptions, summary_features
    from lamina.inputs.timeseries_classical import NearestNeighbour, dtw, euclidean
    from lamina.inputs.timeseries_rocket import RocketEncoder, fit_rocket

    train, test = pd.read_parquet(folder / "train.parquet"), pd.read_parquet(folder / "test.parquet")
    t = TimeseriesInput("series", TimeseriesOptions(encoder="cnn"))  # its standardisation; no kernels to fit
    t.fit(train["series"])
    out = {}

    def record(name: str, started: float, predicted: np.ndarray, score: np.ndarray | None = None) -> None:
        truth = test["label"].to_numpy()
        auc = roc_auc_score(truth == sorted(set(truth))[-1], score) if score is not None and len(set(truth)) == 2 else None
        out[name] = {"accuracy": float((predicted == truth).mean()), "roc_auc": auc,
                     "seconds": time.perf_counter() - started}

    if deterministic:  # 1-NN and MiniRocket + ridge draw nothing at random: one run per set
        for name, distance in (("1-nn euclidean", euclidean), ("1-nn dtw", dtw)):
            started = time.perf_counter()
            model = NearestNeighbour(t, distance).fit(train["series"], train["label"].to_numpy())
            proba = model.predict_proba(test["series"])
            record(name, started, model.classes_[proba.argmax(1)], proba[:, -1])
        xtr, xte = t.transform(train["series"]), t.transform(test["series"])
        for features in (10_000, 4_000):  # MiniRocket's count, and the rocket encoder's default
            started = time.perf_counter()
            encoder = RocketEncoder(int(t.state["channels"]), fit_rocket(xtr, features)).eval()
            with torch.no_grad():
                ftr, fte = encoder(xtr).numpy(), encoder(xte).numpy()
            ridge = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)).fit(ftr, train["label"])
            score = ridge.decision_function(fte)
            record(f"minirocket+ridge {features // 1000}k", started, ridge.predict(fte), score if score.ndim == 1 else None)
    started = time.perf_counter()
    ftr, fte = (summary_features(t.transform(f["series"]).numpy()) for f in (train, test))
    gbm = lgb.LGBMClassifier(n_estimators=300, random_state=seed, n_jobs=1, verbose=-1).fit(ftr, train["label"])
    proba = gbm.predict_proba(fte)
    record("summary+lightgbm", started, gbm.classes_[proba.argmax(1)], proba[:, -1])
    return out


def summarise(results: list[dict]) -> None:
    print(f"\n{'set':<24}{'model':<26}{'runs':>5}{'accuracy median [range]':>28}{'roc_auc median':>16}{'s median':>10}")
    for problem in dict.fromkeys(r["set"] for r in results):
        mine = [r for r in results if r["set"] == problem]
        reference = statistics.median(r["accuracy"] for r in mine if r["model"] == "1-nn euclidean") if any(
            r["model"] == "1-nn euclidean" for r in mine) else None
        for model in dict.fromkeys(r["model"] for r in mine):
            rs = [r for r in mine if r["model"] == model]
            acc = [r["accuracy"] for r in rs]
            aucs = [r["roc_auc"] for r in rs if r.get("roc_auc") is not None]
            two = any(r.get("roc_auc") is not None for r in mine if r["model"] == "1-nn euclidean")  # two classes
            half = [r["accuracy_at_half"] for r in rs if two and r.get("accuracy_at_half") is not None]
            ratio = f"  ×{statistics.median(acc) / reference:.2f} of 1-NN" if reference else ""
            print(f"{problem:<24}{model:<26}{len(rs):>5}{statistics.median(acc):>12.4f} [{min(acc):.4f}, {max(acc):.4f}]"
                  f"{(f'{statistics.median(aucs):.4f}' if aucs else '-'):>16}"
                  f"{statistics.median(r['seconds'] for r in rs):>10.1f}{ratio}"
                  + (f"  at threshold 0.5: {statistics.median(half):.4f}" if half else ""))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=["default"])
    parser.add_argument("--log", type=Path, default=Path("series.jsonl"))
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "lamina_series")
    parser.add_argument("--rescore", action="store_true", help="only add accuracy at threshold 0.5 to logged runs")
    args = parser.parse_args()
    if args.rescore:
        return rescore(args.log, args.data)
    from lamina.data.ts_format import write_official_split

    results = [json.loads(line) for line in args.log.read_text().splitlines()] if args.log.exists() else []
    done = {(r["set"], r["model"], r["seed"]) for r in results}
    with args.log.open("a") as log:
        for seed, problem in ((s, p) for s in range(args.seeds) for p in args.sets):  # every set has seed 0 first
            folder = args.data / problem
            if not (folder / "test.parquet").exists():
                write_official_split(problem, folder)
            runs = {f"lamina {v}": (lambda v=v: lamina_run(folder, v, seed)) for v in args.variants}
            if (problem, "summary+lightgbm", seed) not in done:
                runs["classical"] = lambda: classical_runs(folder, seed, deterministic=seed == 0)
            for name, run in runs.items():  # alternating: each seed runs every model once
                if (problem, name, seed) in done:
                    continue
                got = run()
                for model, r in (got.items() if name == "classical" else [(name, got)]):
                    row = {"set": problem, "model": model, "seed": seed, **r}
                    results.append(row)
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    print(json.dumps(row), flush=True)
    summarise([r for r in results if r["set"] in args.sets])


if __name__ == "__main__":
    main()
