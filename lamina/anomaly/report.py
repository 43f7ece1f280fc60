"""The anomaly model's section of ``report.html``: the test rows' scores of normal and anomalous rows (by the label
column, when there is one), the precision-recall curve with the threshold's operating point, and the cost curve
(``anomaly.costs``) with the chosen threshold marked."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lamina import plots
from lamina.anomaly.evaluation import anomaly_truth
from lamina.outputs.alert_plots import alert_figures, score_distributions
from lamina.pages import img, paragraph


def anomaly_section(model: Any, test: pd.DataFrame) -> str:
    anomaly = model.config.anomaly
    found = model.scores(test)
    if anomaly.label and anomaly.label in test.columns:
        truth, positive = anomaly_truth(test[anomaly.label], model.info.get("positive"), None, anomaly.label)
        keep = truth >= 0
        truth, found = truth[keep], found[keep]
        if 0 < truth.sum() < len(truth):
            return alert_figures("anomaly", truth, found, model.threshold, anomaly.costs,
                                 ("normal", f"anomalous ({anomaly.label} = {positive})"), "anomaly score", with_pr=True)
    plt = plots.pyplot()  # no labelled anomalies among these rows: the scores of all of them
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    score_distributions(ax, np.zeros(len(found), dtype=int), found, model.threshold, ("test rows", ""),
                        "anomaly score")
    ax.legend(fontsize=8), ax.grid(alpha=0.3)
    return (img(plots.png(fig), "anomaly score distributions") +
            paragraph("no labelled anomalies among the test rows: set anomaly.label for the PR and cost curves"))
