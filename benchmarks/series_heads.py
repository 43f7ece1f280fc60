"""Series on small sets, which head: the rocket encoder's un-augmented features of the official training rows, and
what reads them, in a stand-alone replica of Lamina's cross-fitted training (why ACSF1 scored 0.33, and what fixes it).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/series_heads.py [--sets ACSF1 ...]

Features: ``TimeseriesInput`` with its defaults (rocket, about 4,000 features) fitted on the official training file,
computed once for the training and test rows (no augmentation). Heads, each as 5 members on 5 stratified folds of
all training rows, early-stopped on their held-out fold's loss (patience 20), AdamW, batch 16, cosine over 100
epochs, probabilities averaged: Lamina's hidden default (2 residual blocks of 128) and depth 0 (a linear head) at
several weight decays and learning rates; beside them RidgeClassifierCV on all the training rows (MiniRocket's own
recipe). Printed: test accuracy and seconds per arm.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lamina.training.steps import update  # noqa: E402
ARMS = [(2, 1e-4, 1e-3), (0, 1e-4, 1e-3), (0, 1e-2, 1e-3), (0, 1.0, 1e-3), (0, 1e-4, 1e-2)]  # depth, decay, lr


class Block(nn.Module):
    """Lamina's hidden block: linear → LayerNorm → ReLU → dropout, with a skip when the width does not change."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__()
        self.body, self.skip = nn.Sequential(nn.Linear(a, b), nn.LayerNorm(b), nn.ReLU(), nn.Dropout(0.1)), a == b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.skip else self.body(x)


def head(d: int, classes: int, depth: int) -> nn.Module:
    dims = [d] + [128] * depth
    return nn.Sequential(*(Block(a, b) for a, b in zip(dims, dims[1:])), nn.Linear(dims[-1], classes))


def member(x, y, xv, yv, depth: int, decay: float, lr: float, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = head(x.shape[1], int(y.max()) + 1, depth)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=decay)
    total, step, best, since = 100 * -(-len(x) // 16), 0, (np.inf, None), 0
    for _ in range(100):
        net.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), 16):
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + np.cos(np.pi * step / total))
            loss = F.cross_entropy(net(x[order[i:i + 16]]), y[order[i:i + 16]])
            update(net, opt, loss, 1.0)  # Lamina's step: backward, clip at 1, step
            step += 1
        net.eval()
        with torch.no_grad():
            held = F.cross_entropy(net(xv), yv).item()
        if held < best[0]:
            best, since = (held, {k: v.clone() for k, v in net.state_dict().items()}), 0
        elif (since := since + 1) >= 20:
            break
    net.load_state_dict(best[1])
    return net


def main() -> None:
    import pandas as pd
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.model_selection import StratifiedKFold

    from lamina.data.ts_format import write_official_split
    from lamina.inputs.timeseries import TimeseriesInput, TimeseriesOptions

    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", nargs="+", default=["ACSF1", "PickupGestureWiimoteZ", "ItalyPowerDemand", "OSULeaf"])
    parser.add_argument("--data", type=Path, default=Path("/tmp/lamina_series"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    for problem in args.sets:
        if not (args.data / problem / "test.parquet").exists():
            write_official_split(problem, args.data / problem)
        train, test = (pd.read_parquet(args.data / problem / f"{s}.parquet") for s in ("train", "test"))
        t = TimeseriesInput("series", TimeseriesOptions())
        t.fit(train["series"])
        encoder = t.encoder().eval()
        with torch.no_grad():
            x, xt = (encoder(t.transform(f["series"])) for f in (train, test))
        classes = sorted(set(train["label"].astype(str)))
        y, yt = (torch.from_numpy(np.searchsorted(classes, f["label"].astype(str).to_numpy())) for f in (train, test))
        ridge = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)).fit(x.numpy(), y.numpy())
        right = (ridge.predict(xt.numpy()) == yt.numpy()).mean()
        print(f"{problem:24s} ridge, all rows                 accuracy {right:.4f}")
        for depth, decay, lr in ARMS:
            started, folds = time.perf_counter(), StratifiedKFold(5, shuffle=True, random_state=0)
            nets = [member(x[a], y[a], x[b], y[b], depth, decay, lr, i) for i, (a, b) in enumerate(folds.split(x, y))]
            with torch.no_grad():
                p = sum(torch.softmax(net(xt), 1) for net in nets)
            print(f"{problem:24s} depth {depth}, decay {decay:g}, lr {lr:g}  accuracy "
                  f"{(p.argmax(1) == yt).float().mean():.4f}  ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
