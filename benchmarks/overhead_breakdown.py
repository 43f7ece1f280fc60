"""Where Lamina's training-loop overhead goes, item by item, and what some changes would save.

    .venv/bin/python benchmarks/overhead_breakdown.py [--repeats 25] [--steps 200] [--datasets breast_cancer default]

Part 1, per step (microbenchmarks, least hurt by a noisy machine): forward + backward of one batch of 64 rows,
repeated in blocks of 200 with the variants interleaved block by block; median microseconds per call.

* ``plain``      the hand-written step of ``overhead.py``: one tensor in, ``F.binary_cross_entropy_with_logits``
* ``+network``   Lamina's ``Network``: a dict of tensors in (``{k: v[index]}``), a dict of heads out
* ``+loss``      Lamina's ``BinaryLoss``: the int64 class-index target cast to float every step, unreduced BCE then
                 ``.mean()`` (two more ops, and their backward)
* ``+sum``       the multi-output sum ``sum(weights[k] * loss_k for k in out)``: ``0 + 1.0 * loss``, two more autograd
                 ops per step for one output
* ``lamina``     all three, i.e. Lamina's step

and, per call: the optimizer step (default ``AdamW`` against ``AdamW(fused=True)``), the per-epoch snapshot of the
best weights (``copy.deepcopy(net.state_dict())`` as ``fit`` does, against cloning the tensors), and the per-epoch
checkpoint ``lamina.train`` writes (``lamina.training.state.save_state``, into the system temp folder).

Part 2, whole loops (``--steps`` optimizer steps per run, variants interleaved, ``--repeats`` runs each):

* ``plain``        the plain loop of ``overhead.py`` (no validation)
* ``lamina``       ``lamina.training.fit`` without validation, loop time as in ``overhead.py``
* ``replica``      the plain loop's code with Lamina's network, ``BinaryLoss``, weighted sum and per-epoch
                   ``deepcopy`` snapshot: should match ``lamina`` (checks that these items explain the overhead)
* ``replica/fixed`` the replica with float targets made once, the reduced loss, no sum for one output and the
                   snapshot taken by cloning the tensors: what those changes would leave of the overhead
* ``lamina+ckpt``  ``fit`` with a ``workdir``, as ``lamina.train`` calls it: a checkpoint every epoch
* ``plain/fused``  the plain loop with ``AdamW(fused=True)``: what that change alone would save

One torch thread (see ``overhead.py``).
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead as o  # noqa: E402

from lamina.training.state import LoopState, save_state  # noqa: E402
from lamina.preprocessor import Preprocessor  # noqa: E402


def interleaved(functions: dict[str, callable], calls: int, blocks: int) -> dict[str, float]:
    """Median microseconds per call of each function, timed in blocks of ``calls`` with the functions interleaved."""
    for f in functions.values():
        for _ in range(max(5, calls // 10)):
            f()
    times: dict[str, list[float]] = {k: [] for k in functions}
    for _ in range(blocks):
        for k, f in functions.items():
            started = time.perf_counter()
            for _ in range(calls):
                f()
            times[k].append((time.perf_counter() - started) / calls * 1e6)
    return {k: statistics.median(v) for k, v in times.items()}


def plain_loop(config, x, y, fused: bool = False, lamina: tuple | None = None, fixed: bool = False) -> float:
    """The plain loop; with ``lamina=(prep, inputs, targets)`` a replica of Lamina's loop (its network, loss, sum
    and per-epoch deepcopy), and with ``fixed`` that replica with the changes suggested in docs/benchmarks.md."""
    t = config.trainer
    name = config.outputs[0].name
    torch.manual_seed(t.seed)
    if lamina:
        prep, inputs, targets = lamina
        model = prep.network()
        losses = {out.name: out.loss() for out in prep.outputs}
        weights = {out.name: out.options.loss_weight for out in prep.outputs}
    else:
        model = o.plain_model(x.shape[1], config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.learning_rate, weight_decay=t.weight_decay,
                                  **({"fused": True} if fused else {}))
    shuffle = torch.Generator().manual_seed(t.seed)
    n = len(x)
    bounds = o.batch_bounds(n, t.batch_size)
    total = (len(bounds) - 1) * t.epochs
    step = 0
    started = time.perf_counter()
    for _ in range(t.epochs):
        model.train()
        order = torch.randperm(n, generator=shuffle)
        running = torch.zeros(())
        for start, end in zip(bounds, bounds[1:]):
            index = order[start:end]
            for group in optimizer.param_groups:
                group["lr"] = t.learning_rate * 0.5 * (1 + math.cos(math.pi * min(step / total, 1.0)))
            if not lamina:
                loss = F.binary_cross_entropy_with_logits(model(x[index]).squeeze(1), y[index])
            elif fixed:  # float targets made once, the reduced loss, no sum for a single output of weight 1
                loss = F.binary_cross_entropy_with_logits(
                    model({k: v[index] for k, v in inputs.items()})[name].squeeze(1), y[index])
            else:
                out = model({k: v[index] for k, v in inputs.items()})
                loss = sum(weights[k] * losses[k](out[k], targets[k][index]) for k in out)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            optimizer.step()
            running += loss.detach() * len(index)
            step += 1
        float(running)
        if lamina:  # fit's snapshot of the best weights (nearly every epoch without validation)
            if fixed:
                {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                copy.deepcopy(model.state_dict())
    return (time.perf_counter() - started) / total * 1e6


def per_step(dataset: str, config, prep: Preprocessor, x, y, inputs, targets, blocks: int) -> None:
    name = config.outputs[0].name
    torch.manual_seed(0)
    net = prep.network()
    torch.manual_seed(0)
    plain = o.plain_model(x.shape[1], config)
    loss_module = prep.outputs[0].loss()
    weights = {name: 1.0}
    index = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:64]

    def v_plain():
        F.binary_cross_entropy_with_logits(plain(x[index]).squeeze(1), y[index]).backward()

    def v_network():
        F.binary_cross_entropy_with_logits(net({k: v[index] for k, v in inputs.items()})[name].squeeze(1),
                                           y[index]).backward()

    def v_loss():
        loss_module(plain(x[index]), targets[name][index]).backward()

    def v_sum():
        out = {name: plain(x[index])}
        sum(weights[k] * F.binary_cross_entropy_with_logits(out[k].squeeze(1), y[index]) for k in out).backward()

    def v_lamina():
        out = net({k: v[index] for k, v in inputs.items()})
        sum(weights[k] * loss_module(out[k], targets[k][index]) for k in out).backward()

    step = interleaved({"plain": v_plain, "+network": v_network, "+loss": v_loss, "+sum": v_sum,
                        "lamina": v_lamina}, 200, blocks)
    v_plain()  # gradients for the optimizers
    adamw = torch.optim.AdamW(plain.parameters(), lr=1e-3, weight_decay=1e-4)
    fused = torch.optim.AdamW(plain.parameters(), lr=1e-3, weight_decay=1e-4, fused=True)
    with tempfile.TemporaryDirectory() as folder:
        history = [{"epoch": i, "train_loss": 0.1, "lr": 1e-3, "seconds": 0.1} for i in range(30)]
        best = {k: v.clone() for k, v in net.state_dict().items()}
        shuffle = torch.Generator()
        calls = interleaved({
            "AdamW step": adamw.step,
            "AdamW(fused=True) step": fused.step,
            "clip_grad_norm_": lambda: nn.utils.clip_grad_norm_(plain.parameters(), 1.0),
            "deepcopy(state_dict())": lambda: copy.deepcopy(net.state_dict()),
            "clone state_dict tensors": lambda: {k: v.detach().clone() for k, v in net.state_dict().items()},
            "checkpoint (save_state)": lambda: save_state(Path(folder), net, LoopState(best, history, 0.1, 20, 3, 30),
                                                          adamw, shuffle, None, {"preprocessor": prep.state()}),
        }, 20, blocks)
    base = step["plain"]
    print(f"\n{dataset}, per step (forward + backward, batch 64, input width {x.shape[1]}):")
    for k, v in step.items():
        print(f"  {k:<10}{v:>8.1f} us{v - base:>+8.1f} us")
    print(f"{dataset}, per call:")
    for k, v in calls.items():
        print(f"  {k:<26}{v:>9.1f} us")


def loops(dataset: str, config, frames, x, y, tensors: tuple, repeats: int) -> None:
    steps = (len(o.batch_bounds(len(x), config.trainer.batch_size)) - 1) * config.trainer.epochs

    def lamina(workdir: bool) -> float:
        if not workdir:
            return o.lamina_fit(config, frames)["loop"] / steps * 1e6
        with tempfile.TemporaryDirectory() as folder:
            return o.lamina_fit(config, frames, Path(folder))["loop"] / steps * 1e6

    variants = {"plain": lambda: plain_loop(config, x, y), "lamina": lambda: lamina(False),
                "replica": lambda: plain_loop(config, x, y, lamina=tensors),
                "replica/fixed": lambda: plain_loop(config, x, y, lamina=tensors, fixed=True),
                "lamina+ckpt": lambda: lamina(True), "plain/fused": lambda: plain_loop(config, x, y, fused=True)}
    for f in variants.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for k, f in variants.items():
            times[k].append(f())
    base = statistics.median(times["plain"])
    print(f"{dataset}, whole loops ({steps // config.trainer.epochs} steps per epoch x {config.trainer.epochs} "
          f"epochs, no validation), median over {repeats} runs:")
    for k, v in times.items():
        m = statistics.median(v)
        print(f"  {k:<14}{m:>8.1f} us/step  x{m / base:.3f}  ({(m - base) * steps / config.trainer.epochs / 1000:>+7.2f}"
              f" ms per epoch)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="whole-loop runs of each variant")
    parser.add_argument("--blocks", type=int, default=25, help="timed blocks of each microbenchmark")
    parser.add_argument("--steps", type=int, default=200, help="about this many optimizer steps per whole-loop run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--datasets", nargs="+", default=["breast_cancer", "default"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("lamina").setLevel(logging.ERROR)
    print(f"lamina overhead breakdown  {time.strftime('%Y-%m-%d %H:%M')}  torch {torch.__version__}  "
          f"torch threads {torch.get_num_threads()}  load average {os.getloadavg()[0]:.2f}")
    data = o.load_data()
    for dataset in args.datasets:
        frame, target = data[dataset]
        splits = o.split_frame(frame, "stratified", o.FRACTIONS, o.SEED, stratify_on=target)
        epochs = max(1, round(args.steps / (len(o.batch_bounds(len(splits["train"]), 64)) - 1)))
        config = o.make_config(frame, target, epochs, 64)
        x, y, _, _ = o.plain_tensors(config, splits["train"], splits["validation"])
        prep = Preprocessor(config).fit(splits["train"])
        inputs, targets = prep.inputs_to_tensors(splits["train"]), prep.targets_to_tensors(splits["train"])
        per_step(dataset, config, prep, x, y, inputs, targets, args.blocks)
        loops(dataset, config, {"train": splits["train"]}, x, y, (prep, inputs, targets), args.repeats)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
