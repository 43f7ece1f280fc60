"""What each layer has learned: a linear probe (logistic regression; ridge for a number target) on the activations of
every encoder output, of the encoded inputs, and of each hidden block, with a 2-D PCA projection coloured by class.

Activations are caught with forward hooks during one ordinary forward pass, in batches (bounded memory).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lamina.errors import LaminaError
from lamina.predictor import Predictor, run_network

MAX_ROWS = 5000


def activations(predictor: Predictor, inputs: dict[str, torch.Tensor], batch_size: int = 1024) -> dict[str, np.ndarray]:
    """Layer name → (rows, units): each encoder's output, the encoded inputs (what the hidden layers see), and each
    hidden block's output."""
    net = predictor.network.eval()
    caught: dict[str, list[np.ndarray]] = {}
    hooks = []

    def keep(name: str):
        def hook(module: Any, args: Any, output: torch.Tensor) -> None:
            caught.setdefault(name, []).append(output.detach().float().reshape(len(output), -1).cpu().numpy())
        return hook

    kinds = {t.name: t.kind for t in predictor.preprocessor.inputs}
    for name, encoder in zip(net.input_names, net.encoders):
        hooks.append(encoder.register_forward_hook(keep(f"encoder: {name} ({kinds[name]})")))
    hooks.append(net.hidden.register_forward_pre_hook(
        lambda module, args: caught.setdefault("encoded inputs", []).append(args[0].detach().float().cpu().numpy())))
    for i, block in enumerate(net.hidden.blocks):
        hooks.append(block.register_forward_hook(keep(f"hidden {i + 1}")))
    try:
        run_network(net, inputs, batch_size)
    finally:
        for h in hooks:
            h.remove()
    layers = {k: np.concatenate(v) for k, v in caught.items()}
    # The order of the flow: encoders, the encoded inputs, hidden blocks.
    return dict(sorted(layers.items(), key=lambda kv: (0 if kv[0].startswith("encoder") else
                                                      1 if kv[0] == "encoded inputs" else 2, kv[0])))


def probe(predictor: Predictor, frame: pd.DataFrame, output: str | None = None, test_fraction: float = 0.3,
          seed: int = 0) -> dict[str, Any]:
    """Probe accuracy (R² for numbers) of each layer on a held-out part of ``frame``'s labelled rows, plus 2-D PCA
    coordinates (of at most 1,000 rows) for plots."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    prep = predictor.preprocessor
    names = [t.name for t in prep.outputs if t.task is not None]  # a probe predicts a class or a value per row
    if not names:
        raise LaminaError("layer probes need a class or number output; this model has none (its outputs: "
                          f"{', '.join(f'{t.name} ({t.kind})' for t in prep.outputs)})")
    target = next((t for t in prep.outputs if t.name == (output or names[0])), None)
    if target is None or target.task is None:
        raise LaminaError(f"output {output!r}: probe one of {', '.join(names)} (class or number outputs)")
    frame = prep.drop_missing_targets(frame, None)
    frame = prep.drop_bad_inputs(frame, None)
    if len(frame) > MAX_ROWS:
        frame = frame.sample(MAX_ROWS, random_state=seed)
    y = target.transform(frame[target.name]).numpy()
    classes = target.task == "classification"  # the output type's readout: classes, or a value
    if len(frame) < 10:
        raise LaminaError(f"{len(frame)} labelled rows; a probe needs at least 10")
    layers = activations(predictor, prep.inputs_to_tensors(frame))
    index = np.arange(len(frame))
    stratify = y if classes and np.bincount(y).min() >= 2 else None
    train, test = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=stratify)
    results: dict[str, Any] = {}
    shown = index[:1000]
    for name, x in layers.items():
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000) if classes else Ridge())
        model.fit(x[train], y[train])
        score = float(model.score(x[test], y[test]))
        coords = PCA(2, random_state=seed).fit_transform(StandardScaler().fit_transform(x[shown])) \
            if x.shape[1] >= 2 else np.c_[x[shown], np.zeros(len(shown))]
        results[name] = {"units": int(x.shape[1]), "score": score, "pca": np.round(coords, 4).tolist()}
    labels = (np.asarray(target.state["classes"], dtype=object)[y[shown]].tolist() if classes
              else np.round(y[shown], 4).tolist())
    return {"output": target.name, "metric": target.readout_metric, "rows": len(frame),
            "train_rows": len(train), "test_rows": len(test), "layers": results, "labels": labels}


def plots(result: dict[str, Any]) -> dict[str, bytes]:
    """``probes.png`` (score per layer) and ``pca.png`` (each layer's projection, coloured by class)."""
    from lamina import plots as p

    plt = p.pyplot()
    names = list(result["layers"])
    scores = [result["layers"][n]["score"] for n in names]
    fig, ax = plt.subplots(figsize=(max(4, 1.1 * len(names)), 3.2))
    ax.plot(range(len(names)), scores, marker="o")
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(f"probe {result['metric']} (held-out)")
    ax.set_title(f"linear probes of '{result['output']}' per layer", fontsize=10)
    ax.grid(alpha=0.3)
    found = {"probes.png": p.png(fig)}
    fig, axes = plt.subplots(1, len(names), figsize=(3 * len(names), 3), squeeze=False)
    labels = np.asarray(result["labels"])
    for ax, name in zip(axes[0], names):
        coords = np.asarray(result["layers"][name]["pca"])
        if result["metric"] == "accuracy":
            for value in sorted(set(labels.tolist()), key=str):
                m = labels == value
                ax.scatter(coords[m, 0], coords[m, 1], s=6, label=str(value), alpha=0.7)
        else:
            ax.scatter(coords[:, 0], coords[:, 1], s=6, c=labels.astype(float), cmap="viridis")
        ax.set_title(f"{name}\n{result['metric']} {result['layers'][name]['score']:.3f}", fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    if result["metric"] == "accuracy" and len(set(labels.tolist())) <= 12:
        axes[0][-1].legend(fontsize=6, markerscale=2, loc="best")
    found["pca.png"] = p.png(fig)
    return found


def layers(model_dir: str | Path, data: str | Path | pd.DataFrame, out_dir: str | Path | None = None,
           output: str | None = None, verbose: bool = True) -> dict[str, Path]:
    """``lamina layers``: probe every layer on the labelled rows of ``data``; writes ``layers.json``, ``probes.png``
    and ``pca.png`` in ``out_dir`` (default ``<model_dir>/layers``). Returns the written paths."""
    from lamina import plots as p
    from lamina.store import load

    predictor = load(model_dir)
    frame, source = predictor._frame(data, None if isinstance(data, pd.DataFrame) else str(data))
    predictor.preprocessor.check_columns(frame, source, targets=True)
    result = probe(predictor, frame, output)
    out = Path(out_dir) if out_dir else Path(model_dir) / "layers"
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "layers.json"}
    paths["json"].write_text(json.dumps(result), encoding="utf-8")
    for name, data_ in plots(result).items():
        paths[name.removesuffix(".png")] = p.save(data_, out / name)
    if verbose:
        print_probes(result)
    return paths


def print_probes(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"linear probes of '{result['output']}' ({result['train_rows']} rows fitted, "
                        f"{result['test_rows']} held out)", title_justify="left")
    table.add_column("layer")
    table.add_column("units", justify="right")
    table.add_column(f"probe {result['metric']}", justify="right")
    for name, layer in result["layers"].items():
        table.add_row(name, str(layer["units"]), f"{layer['score']:.4f}")
    Console(width=max(Console().width, 100)).print(table)
