"""Text defaults: the encoder `lamina init` writes against the alternatives and TF-IDF + logistic regression, on
reviews (sentiment, 2 classes) and fortunes (topic, 40 classes); accuracy, macro-F1, training seconds, peak memory.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/text_defaults.py [--sets reviews fortunes] [--seeds 42 43 44]
        [--candidates hashed cnn minilm tfidf] [--json out.json]

Every Lamina row is `lamina init`'s config for the set's training file (nothing tuned by hand), with the official
train / validation / test files of examples/reviews and examples/fortunes (their make_data.py writes them; fortunes
needs Debian's ``fortunes`` package), ``trainer.threads: 1`` and the seed; an alternative changes only the text
column's ``encoder`` option (``cnn`` was the default before; ``minilm``: frozen all-MiniLM-L6-v2 vectors, needs
``lamina[pretrained]``). TF-IDF + logistic regression is ``lamina.compare``'s counterpart (word 1-2 + char 2-5
grams, C = 10, its threshold tuned on the same validation rows), fitted on the training rows.

Each (set, candidate, seed) runs in its own process, one after the other, so peak RSS (``ru_maxrss``, imports
included: about 0.4 GB of it is torch and scikit-learn) is that candidate's alone. Seconds are ``lamina.train``'s whole
call (reading, fitting the text type, training, scoring every split); TF-IDF's are features + fit.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = {"reviews": ("review", "score"), "fortunes": ("text", "topic")}


def init_config(name: str, encoder: str | None, seed: int, out: Path) -> dict:
    """`lamina init` on the set's train.csv, pointed at its three official files; only the encoder may change."""
    import yaml

    from lamina.infer import init_config as write_config

    folder = ROOT / "examples" / name
    path, _ = write_config(folder / "train.csv", [SETS[name][1]], out / f"{name}.yaml", force=True, name=name)
    config = yaml.safe_load(path.read_text())
    config["data"] = {split: str(folder / f"{split}.csv") for split in ("train", "validation", "test")}
    config["trainer"].update(seed=seed, threads=1)
    if encoder is not None:
        column = next(c for c in config["inputs"] if c["type"] == "text")
        column["options"] = {"encoder": encoder}
    return config


def worker(name: str, candidate: str, seed: int) -> dict:
    import torch

    import lamina

    torch.set_num_threads(1)
    target = SETS[name][1]
    with tempfile.TemporaryDirectory() as out:
        encoder = None if candidate in ("default", "tfidf") else candidate
        config = init_config(name, encoder, seed, Path(out))
        chosen = next(c for c in config["inputs"] if c["type"] == "text").get("options", {}).get("encoder")
        if candidate == "tfidf":
            return tfidf_row(config, out, name, seed)
        started = time.perf_counter()
        predictor = lamina.train(config, output_dir=out, verbose=False, report=False)
        seconds = time.perf_counter() - started
        epochs = sum(1 for _ in open(Path(predictor.info["run_dir"]) / "metrics.jsonl"))
    m = predictor.metrics["test"][target]
    label = f"lamina {chosen}" + (" (init default)" if candidate == "default" else "")
    return {"set": name, "model": label, "seed": seed, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
            "train_seconds": seconds, "epochs": epochs, "peak_rss_mb": peak_mb()}


def tfidf_row(config: dict, out: str, name: str, seed: int) -> dict:
    """TF-IDF + logistic regression through ``lamina.compare``: a one-epoch Lamina fit only supplies the fitted types."""
    import lamina
    from lamina.compare import counterparts
    from lamina.config import Config
    from lamina.data.load import load_splits

    config["trainer"]["epochs"] = 1
    predictor = lamina.train(config, output_dir=out, verbose=False, report=False)
    frames, _ = load_splits(Config.model_validate(config), ROOT)
    row = counterparts(predictor, frames)[0]
    m = row["metrics"]
    return {"set": name, "model": row["model"], "seed": seed, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
            "train_seconds": row["train_seconds"], "epochs": None, "peak_rss_mb": peak_mb()}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def table(rows: list[dict]) -> str:
    lines = ["| set | model | accuracy (median, range) | macro-F1 (median) | train s (median) | peak RSS MB | runs |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["set"], r["model"]), []).append(r)
    for (name, model), runs in groups.items():
        acc = [r["accuracy"] for r in runs]
        lines.append(f"| {name} | {model} | {statistics.median(acc):.3f} ({min(acc):.3f}–{max(acc):.3f}) | "
                     f"{statistics.median(r['macro_f1'] for r in runs):.3f} | "
                     f"{statistics.median(r['train_seconds'] for r in runs):.1f} | "
                     f"{max(r['peak_rss_mb'] for r in runs):.0f} | {len(runs)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--candidates", nargs="+", default=["default", "cnn", "minilm", "tfidf"])
    parser.add_argument("--json", default=None, help="also write the rows here")
    parser.add_argument("--worker", nargs=3, metavar=("SET", "CANDIDATE", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], int(args.worker[2]))), flush=True)
        return
    for name in args.sets:
        if not (ROOT / "examples" / name / "train.csv").exists():
            subprocess.run([sys.executable, str(ROOT / "examples" / name / "make_data.py")], check=True)
    rows = []
    # Seeds outermost and candidates alternating, so a busy spell on a shared machine hits every candidate alike.
    for seed in args.seeds:
        for name in args.sets:
            for candidate in args.candidates:
                if candidate == "tfidf" and seed != args.seeds[0]:
                    continue  # deterministic: one fit says it all
                done = subprocess.run([sys.executable, __file__, "--worker", name, candidate, str(seed)],
                                      capture_output=True, text=True, cwd=ROOT)
                if done.returncode:
                    print(f"{name} {candidate} {seed}: failed\n{done.stderr[-2000:]}", file=sys.stderr, flush=True)
                    continue
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps(rows, indent=1))
    print("\n" + table(rows))


if __name__ == "__main__":
    main()
