"""The fraud analyst's view of a binary output: a queue of alerts ranked by score, reviewed as far as a budget allows.

precision@k: of the k highest-scored rows, the share that are positive (what a team reviewing k alerts finds).
recall at the alert budget: of all positives, the share among the top ``budget`` fraction of rows.
Expected cost: the mean cost per row of the decisions at the threshold, from a cost matrix (a missed positive costs
``missed``, a false alarm ``false_alarm``); the threshold that minimises it on validation is the one to use.
Bootstrap intervals: the test rows resampled with replacement, each metric recomputed, the 2.5 and 97.5 percentiles.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

LEVEL = 0.95


class Costs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    missed: float = Field(gt=0, description="the cost of a positive the model lets through (a missed fraud)")
    false_alarm: float = Field(gt=0, description="the cost of a negative it flags (a needless review)")


def top(p: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` highest scores (ties broken by position, so the result is reproducible)."""
    order = np.argsort(-p, kind="stable")
    return order[:max(0, min(count, len(p)))]


def precision_at_k(truth: np.ndarray, p: np.ndarray, k: int) -> float:
    flagged = top(p, k)
    return float(truth[flagged].mean()) if flagged.size else math.nan


def recall_at_budget(truth: np.ndarray, p: np.ndarray, budget: float) -> float:
    positives = int(truth.sum())
    if positives == 0:
        return math.nan
    return float(truth[top(p, math.ceil(budget * len(p)))].sum() / positives)


def expected_cost(truth: np.ndarray, predicted: np.ndarray, costs: Costs) -> float:
    """Mean cost per row of the decisions ``predicted`` (1: flagged)."""
    missed = np.sum((truth == 1) & (predicted == 0))
    alarms = np.sum((truth == 0) & (predicted == 1))
    return float((costs.missed * missed + costs.false_alarm * alarms) / max(len(truth), 1))


def cheapest_score(truth: np.ndarray, p: np.ndarray, costs: Costs) -> float | None:
    """The lowest score to flag for the least cost on these rows: flagging the top i rows (the scores at or above
    the i-th) misses the positives below and falsely alarms on the negatives above. None: flag nothing."""
    order = np.argsort(-p, kind="stable")
    scores, hits = p[order], truth[order].astype(np.float64)
    # only cuts between distinct scores are thresholds
    last_of_run = np.r_[scores[1:] != scores[:-1], True]
    flagged_pos, flagged_neg = np.cumsum(hits), np.cumsum(1 - hits)
    cost = costs.missed * (hits.sum() - flagged_pos) + costs.false_alarm * flagged_neg
    cost = np.where(last_of_run, cost, np.inf)
    best = int(np.argmin(cost))
    if costs.missed * hits.sum() <= cost[best]:
        return None
    return float(scores[best])


def alert_metrics(truth: np.ndarray, p: np.ndarray, predicted: np.ndarray, k: int, budget: float,
                  costs: Costs | None) -> dict[str, float]:
    result = {
        "precision_at_k": precision_at_k(truth, p, k), "top_k": k,
        "recall_at_budget": recall_at_budget(truth, p, budget),
        "alert_budget": budget,
    }
    if costs is not None:
        result["expected_cost"] = expected_cost(truth, predicted, costs)
        # the cost of flagging nothing: what a model must beat to be worth running
        result["expected_cost_no_alerts"] = float(costs.missed * truth.sum() / max(len(truth), 1))
    return result


def bootstrap_intervals(truth: np.ndarray, p: np.ndarray, predicted: np.ndarray, k: int, budget: float,
                        costs: Costs | None, resamples: int, seed: int = 0) -> dict[str, float]:
    """``<metric>_low`` and ``<metric>_high``: the 95 % percentile interval of PR-AUC, ROC-AUC and the alert metrics
    over ``resamples`` resamples of the rows (a resample with a single class gives no AUCs).

    The rows are sorted by score once; a resample is then a count per row (how often it was drawn), and every
    metric is a weighted cumulative sum in that order -- no sort and no scikit-learn call per resample."""
    n = len(truth)
    if n == 0 or resamples == 0:
        return {}
    order = np.argsort(-p, kind="stable")
    hit = truth[order].astype(np.float64)
    last_of_run = np.r_[p[order][1:] != p[order][:-1], True]  # a threshold falls only between distinct scores
    cost = None
    if costs is not None:
        d = predicted[order]
        cost = np.where((hit == 1) & (d == 0), costs.missed, 0.0) + np.where((hit == 0) & (d == 1), costs.false_alarm, 0.0)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(resamples):
        weight = np.bincount(rng.integers(0, n, n), minlength=n)[order].astype(np.float64)
        values = _weighted(hit, weight, last_of_run, k, math.ceil(budget * n))
        if cost is not None:
            values["expected_cost"] = float(weight @ cost / n)
        for name, value in values.items():
            draws.setdefault(name, []).append(value)
    tail = (1 - LEVEL) / 2 * 100
    result = {}
    for name, found in draws.items():
        finite = np.asarray(found, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            low, high = np.percentile(finite, [tail, 100 - tail])
            result[f"{name}_low"], result[f"{name}_high"] = float(low), float(high)
    return result


def _weighted(hit: np.ndarray, weight: np.ndarray, last_of_run: np.ndarray, k: int, budget_rows: int
              ) -> dict[str, float]:
    """The metrics of rows sorted by falling score, row i counted ``weight[i]`` times (as scikit-learn's
    average_precision_score and roc_auc_score define them, ties as one threshold)."""
    tp, fp = np.cumsum(weight * hit), np.cumsum(weight * (1 - hit))
    positives, negatives = tp[-1], fp[-1]
    result = {"precision_at_k": _top_hits(hit, weight, k) / k if k <= len(hit) else math.nan,
              "recall_at_budget": _top_hits(hit, weight, budget_rows) / positives if positives else math.nan,
              "pr_auc": math.nan, "roc_auc": math.nan}
    if positives and negatives:
        tp, fp = tp[last_of_run], fp[last_of_run]
        recall = tp / positives
        precision = tp / np.maximum(tp + fp, 1e-12)
        result["pr_auc"] = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
        tpr, fpr = np.r_[0.0, recall], np.r_[0.0, fp / negatives]
        result["roc_auc"] = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    return result


def _top_hits(hit: np.ndarray, weight: np.ndarray, count: int) -> float:
    """Positives among the first ``count`` drawn rows in score order (the last row partly, if it straddles)."""
    taken = np.clip(count - (np.cumsum(weight) - weight), 0, weight)
    return float(taken @ hit)
