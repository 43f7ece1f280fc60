"""Speaker identification on unseen voices: Lamina's identity model against MFCC statistics + cosine scoring (and
+ LDA), same split by person, same protocol: the threshold set on the validation speakers, every metric on the test
speakers, none heard in training; identification enrols each test speaker from 3 clips and queries the others.

    OMP_NUM_THREADS=1 python benchmarks/identity.py [--speakers 103] [--clips 40] [--seeds 0 1 2]
    OMP_NUM_THREADS=1 python benchmarks/identity.py --glyphs [--clips 40]     # writers: Debian's handwriting fonts

With ``--glyphs`` the people are handwriting fonts (``examples/glyphs/make_data.py``, ``make fonts``), ``--clips``
images each, and the counterparts are the image input's classical features (HOG) + cosine, and + LDA.

Data: ``examples/speakers/make_data.py`` (eSpeak NG voices), written to a temporary folder. Also times enrolment
and identification per query against a gallery of 1,000 templates.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHOWN = ("eer", "tar_at_far_1e-3", "tar_at_far_1e-2", "rank1", "rank5", "dir_at_far_1e-2", "far_at_threshold",
         "unknown_rate_at_threshold")


def make_data(out: Path, speakers: int, clips: int, seed: int, words: int) -> Path:
    spec = importlib.util.spec_from_file_location("speakers_make_data", ROOT / "examples" / "speakers" / "make_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make(out, speakers, clips, seed, words)
    return out / "config.yaml"


def make_glyphs(out: Path, images: int, seed: int) -> Path:
    spec = importlib.util.spec_from_file_location("glyphs_make_data", ROOT / "examples" / "glyphs" / "make_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fonts = module.package_fonts()
    if not fonts:
        raise SystemExit("no handwriting fonts: run `make fonts` (as root)")
    module.make(out, fonts, images, seed)
    return out / "config.yaml"


def counterparts(model: Any, frames: dict[str, Any], seconds: float) -> list[dict[str, Any]]:
    """The trained model's test metrics and the classical counterparts' on the same split."""
    from lamina.compare.models import clean

    output = model.preprocessor.outputs[0]
    split = {name: clean(model.preprocessor, frame, name) for name, frame in frames.items()}
    test = model.evaluate(split["test"])[output.name]
    rows = [{"model": "lamina", "seconds": seconds, **test}]
    for row in output.classical_counterparts(model.preprocessor.inputs, split):
        rows.append({"model": row["model"].replace("audio features", "MFCC statistics").replace("image features",
                                                                                                  "HOG"),
                     "seconds": row["train_seconds"] + row["predict_seconds"], **row["metrics"]})
    return rows


def trained(folder: Path) -> list[dict[str, Any]]:
    """A model already trained on the example (``lamina train``): its split remade from its config."""
    import lamina
    from lamina.data.load import load_splits

    model = lamina.load(folder)
    frames, _ = load_splits(model.config, folder)
    return counterparts(model, frames, float("nan"))


def one_seed(config: Path, seed: int, epochs: int | None) -> list[dict[str, Any]]:
    """Lamina and the classical counterparts on one split (``seed`` picks the people and the initialisation)."""
    import yaml

    from lamina.run import run

    data = yaml.safe_load(config.read_text())
    data["data"]["split"]["seed"] = seed
    data["trainer"]["seed"] = seed
    if epochs:
        data["trainer"]["epochs"] = epochs
    data["data"]["path"] = str(config.parent / data["data"]["path"])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as runs:
        trained = run(data, output_dir=runs, verbose=False)
    seconds = time.perf_counter() - started
    return counterparts(trained.model, trained.frames, seconds)


def gallery_timing(dim: int = 128, people: int = 1000, queries: int = 2000) -> dict[str, float]:
    """Enrolment (templates from 3 embeddings each) and matching time per query against 1,000 templates."""
    from lamina.outputs.identity_metrics import normalise

    rng = np.random.default_rng(0)
    emb = normalise(rng.normal(size=(people * 3, dim)))
    started = time.perf_counter()
    templates = normalise(emb.reshape(people, 3, dim).mean(1))
    enrol = (time.perf_counter() - started) / people
    q = normalise(rng.normal(size=(queries, dim)))
    started = time.perf_counter()
    for row in q:  # one query at a time, as lamina identify meets them
        scores = templates @ row
        int(scores.argmax())
    match = (time.perf_counter() - started) / queries
    return {"enrol_ms_per_person": enrol * 1e3, "match_ms_per_query": match * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speakers", type=int, default=103)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="override the example config's epochs")
    parser.add_argument("--words", type=int, default=4, help="words per clip")
    parser.add_argument("--glyphs", action="store_true", help="writers of handwriting fonts instead of speakers")
    parser.add_argument("--data", type=Path, default=None, help="a folder already written by make_data.py")
    parser.add_argument("--model", type=Path, default=None, help="score this trained model (its config's split) "
                                                                 "instead of training one per seed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[str, list[dict[str, Any]]] = {}
        runs = [(None, trained(args.model))] if args.model else []
        if not args.model:
            config = (args.data / "config.yaml" if args.data
                      else make_glyphs(Path(tmp), args.clips, 0) if args.glyphs
                      else make_data(Path(tmp), args.speakers, args.clips, 0, args.words))
            runs = ((seed, one_seed(config, seed, args.epochs)) for seed in args.seeds)
        for seed, rows in runs:
            for row in rows:
                results.setdefault(row["model"], []).append(row)
                print(f"seed {seed} {row['model']:<40} " + " ".join(f"{k} {row.get(k, float('nan')):.4f}"
                                                                    for k in SHOWN), flush=True)
    print(f"\nmedians over {'the given model' if args.model else f'seeds {args.seeds}'} (test speakers unseen in "
          "training):")
    print(f"{'model':<40} " + " ".join(f"{k:>10}" for k in ("eer", "tar@1e-3", "rank1", "seconds")))
    medians = {m: {k: statistics.median(r[k] for r in rows) for k in ("eer", "tar_at_far_1e-3", "rank1", "seconds")}
               for m, rows in results.items()}
    for m, v in medians.items():
        print(f"{m:<40} " + " ".join(f"{v[k]:>10.4f}" for k in ("eer", "tar_at_far_1e-3", "rank1", "seconds")))
    best = min((m for m in medians if m != "lamina"), key=lambda m: medians[m]["eer"])
    print(f"EER ratio, best classical ({best}) / lamina: {medians[best]['eer'] / max(medians['lamina']['eer'], 1e-9):.2f}")
    print("gallery of 1,000 templates:", {k: round(v, 4) for k, v in gallery_timing().items()})


if __name__ == "__main__":
    main()
