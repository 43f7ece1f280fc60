"""`lamina tune` against the default config and against random search with the same budget, on two real sets.

- cancer: scikit-learn's breast cancer table (569 rows, 30 numbers, a binary diagnosis);
- digits: scikit-learn's 1,797 real 8×8 handwritten digits, written as PNG files (an image input, 10 classes).

For each set: ``lamina init DATA --target T`` (``trainer.folds`` left at init's ``auto``, or set by ``--folds``: on
breast cancer ``auto`` cross-fits 5 networks, and every trial is then scored out of fold; with 1 the default, the
trials and the tuned model are one network each on the same validation split), ``lamina train`` (the
default), then for each budget ``lamina tune --time B`` with Optuna's TPE sampler and with ``--sampler random``,
run alternately. Each row: the validation log loss (out of fold when cross-fitted), test accuracy, ROC-AUC and log
loss of the model it leaves, the trials run, and the command's wall-clock seconds against the budget.

Run: ``OMP_NUM_THREADS=1 python benchmarks/tune.py --budgets 60,300`` (writes under --out).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def cancer(folder: Path) -> tuple[Path, str]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    path = folder / "cancer.csv"
    frame.to_csv(path, index=False)
    return path, "diagnosis"


def digits(folder: Path) -> tuple[Path, str]:
    import pandas as pd

    spec = importlib.util.spec_from_file_location("make_data", ROOT / "examples" / "digits" / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    images, labels = module.sklearn_digits()
    paths = module.write_folder(images, labels, folder / "digits")
    path = folder / "digits.csv"
    pd.DataFrame({"image": [str(p.relative_to(folder)) for p in paths], "label": labels}).to_csv(path, index=False)
    return path, "label"


SETS = {"cancer": cancer, "digits": digits}


def lamina(*args: str, cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lamina", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        raise SystemExit(f"lamina {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started, done.stdout


def scores(model_dir: Path, target: str) -> dict[str, float]:
    info = json.loads((model_dir / "lamina.json").read_text(encoding="utf-8"))
    test, validation = info["metrics"]["test"][target], info["metrics"]["validation"][target]
    return {"val_loss": validation["log_loss"], "test_accuracy": test["accuracy"],
            "test_roc_auc": test.get("roc_auc", float("nan")), "test_log_loss": test["log_loss"]}


def prepare(name: str, out: Path, folds: str) -> tuple[Path, str]:
    folder = out / f"{name}-folds{folds}"
    folder.mkdir(parents=True, exist_ok=True)
    data, target = SETS[name](folder)
    if (folder / "config.yaml").is_file():  # an earlier run's: its default model is kept with it
        return folder, target
    lamina("init", data.name, "--target", target, "--force", cwd=folder)
    config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    config["trainer"]["folds"] = folds if folds == "auto" else int(folds)
    config["name"] = name
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return folder, target


def tuned(folder: Path, target: str, budget: int, sampler: str) -> dict[str, float]:
    run = f"{folder.name}-{sampler}-{budget}"  # each budget and sampler its own study
    raw = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    raw["name"] = run
    (folder / f"{run}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    try:
        seconds, stdout = lamina("tune", f"{run}.yaml", "--time", f"{budget}s", "--sampler", sampler, cwd=folder)
    except SystemExit as e:  # e.g. no trial finished within the budget: a row that says so
        print(e, flush=True)
        nan = float("nan")
        return {"val_loss": nan, "test_accuracy": nan, "test_roc_auc": nan, "test_log_loss": nan, "trials": 0,
                "seconds": nan}
    study = folder / "runs" / f"{run}.tune"
    trials = sum(1 for line in stdout.splitlines() if line.startswith("trial "))
    return {**scores(study / "best", target), "trials": trials, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="cancer,digits")
    parser.add_argument("--budgets", default="60", help="seconds, comma-separated")
    parser.add_argument("--out", type=Path, default=Path("/tmp/lamina-bench-tune"))
    parser.add_argument("--folds", default="auto", help="trainer.folds for the default and every trial: auto or N")
    args = parser.parse_args()
    rows = []
    for name in args.sets.split(","):
        folder, target = prepare(name, args.out, args.folds)
        seconds = float("nan")
        if not (folder / "runs" / "default" / "lamina.json").is_file():  # kept from an earlier run of this script
            seconds, _ = lamina("train", "config.yaml", "--output", "runs/default", "--quiet", cwd=folder)
        rows.append((name, "-", "default", {**scores(folder / "runs" / "default", target), "trials": 1,
                                           "seconds": seconds}))
        for i, budget in enumerate(int(b) for b in args.budgets.split(",")):
            order = ("tpe", "random") if i % 2 == 0 else ("random", "tpe")  # alternated: the machine is shared
            for sampler in order:
                rows.append((name, f"{budget}s", sampler, tuned(folder, target, budget, sampler)))
                print(rows[-1], flush=True)
    print(f"\n{'set':8} {'budget':>6} {'method':8} {'val loss':>9} {'test acc':>9} {'test auc':>9} {'test loss':>9} "
          f"{'trials':>6} {'seconds':>8} {'val loss / default':>18}")
    for name, budget, method, r in rows:
        base = next(x for n, _, m, x in rows if n == name and m == "default")
        print(f"{name:8} {budget:>6} {method:8} {r['val_loss']:9.4f} {r['test_accuracy']:9.4f} "
              f"{r['test_roc_auc']:9.4f} {r['test_log_loss']:9.4f} {r['trials']:6d} {r['seconds']:8.1f} {r['val_loss'] / base['val_loss']:18.3f}")


if __name__ == "__main__":
    main()
