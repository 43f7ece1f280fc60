"""Translation: English→French with Lamina's text output (transformer encoder → decoder with cross-attention)
against copying the source sentence, the baseline every translation metric is read against.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/translation.py [--numbers-rows 12000] [--gettext-rows 20000]
        [--epochs 30] [--gettext-epochs 15] [--skip-numbers] [--skip-gettext] [--threads 1]

Two data sets, both written by examples/translation/make_data.py (nothing is downloaded):

* numbers: num2words phrases (``three thousand, four hundred and eighty-two`` → ``trois mille quatre cent
  quatre-vingt-deux``), every number distinct, split 80/10/10 (seed 42): the test numbers are never seen in training.
  Goal: exact match ≥ 95 % on the held-out numbers.
* gettext: real human translations of software messages from the French catalogs under
  /usr/share/locale/fr/LC_MESSAGES; a seeded sample of ``--gettext-rows`` pairs, split 80/10/10.

Figures on the test rows: exact match, BLEU and chrF (sacrebleu) for the model and for the copy baseline; training
minutes (all of ``lamina.train``: tokenizers, training, scoring every split with beam search); sentences/second at
generation with greedy and beam search (the model's test rows, one call, after a warm-up).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]


def make(kind: str, rows: int, folder: Path) -> Path:
    flag = ["--gettext"] if kind == "gettext" else ["--rows", str(rows)]
    subprocess.run([sys.executable, str(ROOT / "examples/translation/make_data.py"), *flag, "--out", str(folder)],
                   check=True, capture_output=True)
    path = folder / ("gettext.tsv" if kind == "gettext" else "pairs.tsv")
    if kind == "gettext":
        frame = pd.read_csv(path, sep="\t", keep_default_na=False)
        frame.sample(min(rows, len(frame)), random_state=0).to_csv(path, sep="\t", index=False)
    return path


def config(kind: str, path: Path, epochs: int, threads: int) -> dict:
    small = kind == "numbers"
    width, vocabulary = (128, 1000) if small else (256, 4000)
    return {
        "name": f"translation_{kind}",
        "data": {"path": str(path), "split": {"method": "random", "fractions": [0.8, 0.1, 0.1], "seed": 42}},
        "inputs": [{"name": "english", "type": "text", "options": {
            "encoder": "transformer", "embedding_dim": width, "layers": 2, "heads": 4, "vocab_size": vocabulary,
            "max_length": 64, "lowercase": False}}],
        "outputs": [{"name": "french", "type": "text", "options": {
            "dim": width, "layers": 2, "heads": 4, "vocab_size": vocabulary, "max_length": 64, "beam_size": 4}}],
        "hidden": {"depth": 1, "width": width},
        # Transformers need a warm-up: one-cycle rises for the first 30 % of the steps.
        "trainer": {"epochs": epochs, "batch_size": 64, "learning_rate": 0.002 if small else 0.001,
                    "schedule": "cosine" if small else "onecycle", "threads": threads,
                    "early_stopping": {"patience": 5}},
    }


def copy_scores(test: pd.DataFrame) -> dict[str, float]:
    import sacrebleu

    source, truth = test["english"].astype(str).tolist(), test["french"].astype(str).tolist()
    return {"exact_match": sum(s == t for s, t in zip(source, truth)) / len(truth),
            "bleu": sacrebleu.corpus_bleu(source, [truth]).score, "chrf": sacrebleu.corpus_chrf(source, [truth]).score}


def speed(model, test: pd.DataFrame, beam: int) -> float:
    head = model.network.heads[0]
    before = head.beam_size
    head.beam_size = beam
    model.predict(test.iloc[:64])  # warm-up
    started = time.perf_counter()
    model.predict(test)
    seconds = time.perf_counter() - started
    head.beam_size = before
    return len(test) / seconds


def run(kind: str, rows: int, epochs: int, threads: int) -> dict:
    import lamina
    from lamina.data.load import load_splits
    from lamina.config import validate_config

    with tempfile.TemporaryDirectory() as tmp:
        path = make(kind, rows, Path(tmp))
        raw = config(kind, path, epochs, threads)
        started = time.perf_counter()
        model = lamina.train(raw, output_dir=Path(tmp) / "runs", verbose=False, report=False)
        minutes = (time.perf_counter() - started) / 60
        history = Path(model.info["run_dir"]) / "metrics.jsonl" if "run_dir" in model.info else None
        if history and history.is_file():
            print(history.read_text(), flush=True)
        frames, _ = load_splits(validate_config(raw), Path(tmp))
        test = frames["test"]
        torch.set_num_threads(threads)
        return {"kind": kind, "train rows": len(frames["train"]), "test rows": len(test),
                "model": model.metrics["test"]["french"], "copy": copy_scores(test), "minutes": minutes,
                "epochs": model.info["epochs_run"], "greedy/s": speed(model, test, 1), "beam4/s": speed(model, test, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers-rows", type=int, default=12000)
    parser.add_argument("--gettext-rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--gettext-epochs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-numbers", action="store_true")
    parser.add_argument("--skip-gettext", action="store_true")
    args = parser.parse_args()
    results = []
    if not args.skip_numbers:
        results.append(run("numbers", args.numbers_rows, args.epochs, args.threads))
    if not args.skip_gettext:
        results.append(run("gettext", args.gettext_rows, args.gettext_epochs, args.threads))
    print(f"\n{'data':<8} {'train':>6} {'test':>5} {'model':>24} {'copy source':>24} {'train min':>9} {'epochs':>6} "
          f"{'greedy/s':>8} {'beam4/s':>7}")
    for r in results:
        m, c = r["model"], r["copy"]
        print(f"{r['kind']:<8} {r['train rows']:>6} {r['test rows']:>5} "
              f"{'EM %.3f BLEU %.1f chrF %.1f' % (m['exact_match'], m['bleu'], m['chrf']):>24} "
              f"{'EM %.3f BLEU %.1f chrF %.1f' % (c['exact_match'], c['bleu'], c['chrf']):>24} "
              f"{r['minutes']:>9.1f} {r['epochs']:>6} {r['greedy/s']:>8.0f} {r['beam4/s']:>7.0f}")
        print(f"{'':<8} chrF model ÷ copy: {m['chrf'] / max(c['chrf'], 1e-9):.2f}×   BLEU model − copy: "
              f"{m['bleu'] - c['bleu']:+.1f}")


if __name__ == "__main__":
    main()
