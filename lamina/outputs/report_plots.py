"""The report sections of the built-in class and number outputs: ROC and PR curves with the chosen threshold,
calibration, the scores of each class and the cost curve (binary), calibration of the predicted class's confidence
(category), predicted against true (number)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lamina import plots
from lamina.outputs.alert_plots import alert_figures
from lamina.outputs.classes import truth_index
from lamina.pages import heading, img


def _calibration(ax: Any, predicted: np.ndarray, observed: np.ndarray, brier: float, what: str = "predicted probability"
                 ) -> None:
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=0.8)
    ax.plot(predicted, observed, marker="o", label=f"Brier {brier:.4f}")
    ax.set_xlabel(what), ax.set_ylabel("observed frequency"), ax.set_title("calibration (test)", fontsize=10)


def binary_section(t: Any, test: pd.DataFrame, raw: np.ndarray) -> str | None:
    from scipy.special import expit
    from sklearn import metrics as skm
    from sklearn.calibration import calibration_curve

    truth = truth_index(test[t.name], t.state["classes"])
    keep = truth >= 0
    y, p = truth[keep], expit(raw[keep, 0])
    if len(np.unique(y)) < 2:
        return None
    threshold = t.state["threshold"]
    at = p >= threshold
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    fpr, tpr, _ = skm.roc_curve(y, p)
    axes[0].plot(fpr, tpr, label=f"AUC {skm.roc_auc_score(y, p):.3f}")
    axes[0].plot([0, 1], [0, 1], "--", color="gray", linewidth=0.8)
    axes[0].scatter([(at & (y == 0)).sum() / max((y == 0).sum(), 1)], [(at & (y == 1)).sum() / max(y.sum(), 1)],
                    color="red", zorder=3, label=f"threshold {threshold:.3f}")
    axes[0].set_xlabel("false positive rate"), axes[0].set_ylabel("true positive rate")
    axes[0].set_title(f"ROC, positive = {t.state['classes'][1]}", fontsize=10)
    precision, recall, _ = skm.precision_recall_curve(y, p)
    axes[1].plot(recall, precision, label=f"AP {skm.average_precision_score(y, p):.3f}")
    axes[1].scatter([(at & (y == 1)).sum() / max(y.sum(), 1)], [(at & (y == 1)).sum() / max(at.sum(), 1)],
                    color="red", zorder=3, label=f"threshold {threshold:.3f}")
    axes[1].set_xlabel("recall"), axes[1].set_ylabel("precision"), axes[1].set_title("precision-recall", fontsize=10)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    _calibration(axes[2], predicted, observed, skm.brier_score_loss(y, p))
    for ax in axes:
        ax.legend(fontsize=8), ax.grid(alpha=0.3)
    negative, positive = (str(c) for c in t.state["classes"])
    alerts = alert_figures(t.name, y, p, threshold, t.options.costs, (negative, positive),
                           f"P({t.name} = {positive})", with_pr=False)
    return heading(t.name) + img(plots.png(fig), f"{t.name} ROC PR calibration") + alerts


def category_section(t: Any, test: pd.DataFrame, raw: np.ndarray) -> str:
    from scipy.special import softmax
    from sklearn.calibration import calibration_curve

    truth = truth_index(test[t.name], t.state["classes"])
    keep = truth >= 0
    proba = softmax(raw[keep], axis=1)
    confidence, correct = proba.max(1), (proba.argmax(1) == truth[keep]).astype(float)
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.8))
    observed, predicted = calibration_curve(correct, confidence, n_bins=10, strategy="quantile") \
        if len(np.unique(correct)) > 1 else (np.array([correct.mean()]), np.array([confidence.mean()]))
    _calibration(ax, predicted, observed, float(np.mean((confidence - correct) ** 2)), "confidence")
    ax.legend(fontsize=8), ax.grid(alpha=0.3)
    return heading(t.name) + img(plots.png(fig), f"{t.name} calibration")


def value_section(t: Any, test: pd.DataFrame, values: np.ndarray) -> str:
    """Predicted ``values`` against the true ones."""
    truth = pd.to_numeric(test[t.name], errors="coerce").to_numpy()
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(truth, values, s=6, alpha=0.6)
    low, high = np.nanmin(truth), np.nanmax(truth)
    ax.plot([low, high], [low, high], "--", color="gray")
    ax.set_xlabel("true"), ax.set_ylabel("predicted"), ax.set_title(f"'{t.name}' on test", fontsize=10)
    return heading(t.name) + img(plots.png(fig), f"{t.name} predicted vs true")
