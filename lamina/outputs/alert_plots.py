"""The alert analyst's plots of scored rows with a threshold, shared by the binary output's report section and the
anomaly task's: the scores of normal and positive rows side by side, the precision-recall curve with the chosen
operating point, and the expected cost against the threshold (from a cost matrix) with the chosen one marked."""

from __future__ import annotations

from typing import Any

import numpy as np

from lamina import plots
from lamina.outputs.alerts import Costs
from lamina.pages import img, paragraph

CURVE_POINTS = 400  # thresholds drawn on the cost curve: score quantiles, so rare high scores keep their share


def score_distributions(ax: Any, truth: np.ndarray, scores: np.ndarray, threshold: float, names: tuple[str, str],
                        what: str) -> None:
    """Histograms of the scores of normal (0) and positive (1) rows on shared bins; log counts, since positives
    are a few in thousands."""
    log_x = bool(scores.min() > 0) and scores.max() / scores.min() > 100
    edges = np.geomspace(scores.min(), scores.max(), 41) if log_x else np.linspace(scores.min(), scores.max(), 41)
    for label, name, colour in ((0, names[0], "tab:blue"), (1, names[1], "tab:red")):
        part = scores[truth == label]
        if part.size:
            ax.hist(part, bins=edges, alpha=0.55, color=colour, label=f"{name} ({part.size})")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:.4g}")
    if log_x:
        ax.set_xscale("log")
    ax.set_yscale("log"), ax.set_xlabel(what), ax.set_ylabel("rows")
    ax.set_title("score distributions (test)", fontsize=10)


def pr_curve(ax: Any, truth: np.ndarray, scores: np.ndarray, flagged: np.ndarray, threshold: float) -> None:
    """Precision against recall, the rows ``flagged`` at the chosen threshold as a red point."""
    from sklearn import metrics as skm

    precision, recall, _ = skm.precision_recall_curve(truth, scores)
    ax.plot(recall, precision, label=f"AP {skm.average_precision_score(truth, scores):.3f}")
    hits = int((flagged & (truth == 1)).sum())
    ax.scatter([hits / max(int(truth.sum()), 1)], [hits / max(int(flagged.sum()), 1)], color="red", zorder=3,
               label=f"threshold {threshold:.4g}")
    ax.set_xlabel("recall"), ax.set_ylabel("precision"), ax.set_title("precision-recall (test)", fontsize=10)


def cost_curve(ax: Any, truth: np.ndarray, scores: np.ndarray, threshold: float, costs: Costs) -> None:
    """Expected cost per row when every row scoring at least t is flagged, for t over the scores' quantiles; the
    cost of flagging nothing as a line, the chosen threshold as a red point."""
    order = np.argsort(scores)
    sorted_scores, hits = scores[order], truth[order].astype(np.float64)
    cuts = np.unique(np.quantile(sorted_scores, np.linspace(0, 1, CURVE_POINTS)))
    below = np.searchsorted(sorted_scores, cuts, side="left")  # rows scoring under each cut: not flagged
    missed = np.r_[0.0, np.cumsum(hits)][below]
    alarms = (len(hits) - below) - (hits.sum() - missed)
    cost = (costs.missed * missed + costs.false_alarm * alarms) / len(hits)
    ax.plot(cuts, cost, label="expected cost per row")
    ax.axhline(costs.missed * hits.sum() / len(hits), color="gray", linestyle=":", label="no alerts")
    at = scores >= threshold
    chosen = (costs.missed * np.sum((truth == 1) & ~at) + costs.false_alarm * np.sum((truth == 0) & at)) / len(truth)
    ax.scatter([threshold], [chosen], color="red", zorder=3, label=f"threshold {threshold:.4g}: {chosen:.4g}")
    if sorted_scores[0] > 0 and sorted_scores[-1] / sorted_scores[0] > 100:
        ax.set_xscale("log")
    ax.set_xlabel("threshold"), ax.set_ylabel("cost per row")
    ax.set_title(f"cost curve (missed {costs.missed:g}, false alarm {costs.false_alarm:g})", fontsize=10)


def alert_figures(name: str, truth: np.ndarray, scores: np.ndarray, threshold: float, costs: Costs | None,
                  names: tuple[str, str], what: str, with_pr: bool) -> str:
    """The score distributions, the PR curve (``with_pr``; the binary output draws its own beside ROC) and the
    cost curve of labelled scored rows, as one embedded image; a note where no costs are set."""
    flagged = scores >= threshold
    panels = 1 + with_pr + (costs is not None)
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, panels, figsize=(4.4 * panels, 3.8), squeeze=False)
    axes = list(axes[0])
    score_distributions(axes[0], truth, scores, threshold, names, what)
    if with_pr:
        pr_curve(axes[1], truth, scores, flagged, threshold)
    if costs is not None:
        cost_curve(axes[-1], truth, scores, threshold, costs)
    for ax in axes:
        ax.legend(fontsize=8), ax.grid(alpha=0.3)
    parts = ["score distributions", *(["PR curve"] if with_pr else []), *(["cost curve"] if costs else [])]
    note = "" if costs else paragraph("no cost curve: set costs {missed: ..., false_alarm: ...} to draw it")
    return img(plots.png(fig), f"{name} {', '.join(parts)}") + note
