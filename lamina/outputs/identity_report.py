"""The identity output's report section: genuine and impostor score distributions of the test people's pairs with
the calibrated threshold, and the ROC on a log false-accept axis."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lamina import plots
from lamina.inputs.binary import label
from lamina.outputs.identity_metrics import pair_scores
from lamina.pages import heading, img, paragraph


def identity_section(t: Any, test: pd.DataFrame, raw: np.ndarray) -> str | None:
    from sklearn.metrics import roc_curve

    labels = test[t.name].map(label).to_numpy().astype(str)
    genuine, impostor = pair_scores(t.embedding(raw), labels)
    if len(genuine) == 0 or len(impostor) == 0:
        return None
    threshold = t.state.get("threshold")
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    bins = np.linspace(-1, 1, 81)
    axes[0].hist(impostor, bins=bins, density=True, alpha=0.6, label=f"impostor pairs ({len(impostor)})")
    axes[0].hist(genuine, bins=bins, density=True, alpha=0.6, label=f"genuine pairs ({len(genuine)})")
    if threshold is not None:
        axes[0].axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold:.3f}")
    axes[0].set_xlabel("cosine score"), axes[0].set_title("test people (unseen in training)", fontsize=10)
    fpr, tpr, _ = roc_curve(np.r_[np.ones(len(genuine)), np.zeros(len(impostor))], np.r_[genuine, impostor])
    keep = fpr > 0
    axes[1].semilogx(fpr[keep], tpr[keep])
    axes[1].axvline(t.options.target_far, color="red", linestyle="--", label=f"target FAR {t.options.target_far:g}")
    axes[1].set_xlabel("false accept rate"), axes[1].set_ylabel("true accept rate"), axes[1].set_title("ROC", fontsize=10)
    for ax in axes:
        ax.legend(fontsize=8), ax.grid(alpha=0.3)
    note = (f"{len(np.unique(labels))} test people, none seen in training. Pairs scoring at least the threshold "
            f"(set on the validation people for a false-accept rate of {t.options.target_far:g}) are the same person.")
    return heading(t.name) + paragraph(note) + img(plots.png(fig), f"{t.name} score distributions and ROC")
