"""Deep against classical, and whether the explanations are faithful: ``lamina.compare.compare`` on breast cancer,
credit default (ISLR Default) and scikit-learn's digits written as PNG files, then the deletion check on each test
split.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compare.py [--datasets breast_cancer credit_default digits]

Configs: ``examples/<name>/config.yaml`` unchanged (data paths made absolute; the digits are written by
``examples/digits/make_data.py``'s ``write_folder`` into a temporary folder, nothing in the repository changes).
Every model trains on the same train rows (``load_splits``) and is scored on the same test rows with the output
type's metrics. Deletion check (``lamina.explain.faithfulness``): on the test rows, replace with the baseline the
top-attributed 10 % of each row's columns (at least one) or of each image's pixels, or a random 10 %; faithful
attributions hurt accuracy more. Model directories, comparisons and reports go to a temporary folder (``--keep DIR``
keeps them).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "digits"))


def config_for(name: str, work: Path) -> Path:
    source = ROOT / "examples" / name / "config.yaml"
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    if name == "digits":
        from make_data import sklearn_digits, write_folder

        folder = work / "digits"
        if not folder.exists():
            write_folder(*sklearn_digits(), folder)
        config["data"]["path"] = str(folder)
    else:
        config["data"]["path"] = str((source.parent / config["data"]["path"]).resolve())
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["breast_cancer", "credit_default", "digits"])
    parser.add_argument("--keep", type=Path, default=None, help="write runs here instead of a temporary folder")
    args = parser.parse_args()

    import json

    import torch

    from lamina.compare import compare
    from lamina.data.load import load_splits
    from lamina.explain import faithfulness
    from lamina.run import as_config
    from lamina.store import load

    torch.set_num_threads(1)
    work = args.keep or Path(tempfile.mkdtemp(prefix="lamina-compare-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"lamina compare benchmark  {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC  torch {torch.__version__}"
          f"  threads 1  load average {os.getloadavg()[0]:.2f}  runs in {work}")
    lines = []
    for name in args.datasets:
        config = config_for(name, work)
        started = time.perf_counter()
        paths = compare(config, output_dir=work / "runs", verbose=False)
        result = json.loads(paths["json"].read_text())
        model = load(paths["run_dir"])
        parsed, base, _ = as_config(config)
        frames, _ = load_splits(parsed, base)
        check = faithfulness(model, frames["test"], fraction=0.1)
        seconds = time.perf_counter() - started
        print(f"\n{name} ({seconds:.0f} s in all)")
        print(f"  {'model':<16}{'test rows':>10}{'metric':>10}{'value':>9}{'accuracy':>10}{'train s':>9}{'predict ms':>12}")
        for r in result["rows"]:
            print(f"  {r['model']:<16}{r['metrics']['rows']:>10}{r['metric']:>10}{r['metric_value']:>9.4f}"
                  f"{r['metrics'].get('accuracy', float('nan')):>10.4f}{r['train_seconds']:>9.2f}"
                  f"{r['predict_seconds'] * 1000:>12.1f}")
        for verdict in result["verdicts"].values():
            print(f"  {verdict}")
        print(f"  deletion check on the test rows, {check['deleted']}: accuracy {check['original']:.4f} → "
              f"{check['top_deleted']:.4f} top-attributed deleted, {check['random_deleted']:.4f} random deleted "
              f"({'faithful' if check['faithful'] else 'NOT faithful'})")
        lines.append((name, check))
    print("\nfaithful (top-attributed deletion hurts more than random) on every data set:",
          all(c["faithful"] for _, c in lines))


if __name__ == "__main__":
    main()
