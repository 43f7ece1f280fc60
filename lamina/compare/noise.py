"""How sure a comparison is: a confidence interval for "deep minus the best classical model", and what it means.

On a 36-row set the test split holds 5 rows: one row more or less right moves accuracy by 0.2, so "0.40 vs 0.20"
says nothing. Two things make the comparison honest:

* **cross-fitting** (small data: under ``lamina.folds.AUTO_FOLD_ROWS`` labelled rows, no file inputs): every labelled
  row -- train, validation and test together -- is predicted by a deep model and by each classical model that did
  not see it (``FOLDS`` outer folds; inside each, the usual train / validation roles), so the difference is measured
  on all rows instead of a few;
* **a paired bootstrap over rows**: the same resampled rows score both models, ``RESAMPLES`` times, and the
  95 % percentile interval of the difference of the headline metric is reported. When it includes zero the verdict
  is "no clear difference".

Larger sets keep their test split (big enough to be measured on) and get the bootstrap interval over its rows.
``lamina.compare`` calls ``assess``; the functions that train and score the models are passed in, so this module
needs nothing from it.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np
import pandas as pd

from lamina.config import AUTO_FOLD_ROWS, Config
from lamina.folds import assign_folds, fit_auto
from lamina.logs import quiet
from lamina.predictor import Predictor

FOLDS, RESAMPLES, LEVEL = 5, 1000, 0.95
DEEP = "lamina (deep)"
Kept = dict[tuple[str, str], tuple[pd.Index, np.ndarray]]  # (model, output) → the scored rows' index, raw outputs
Score = Callable[[Predictor, dict[str, pd.DataFrame], Kept], None]  # scores every model on frames['test'] into Kept


def paired_interval(output: Any, values: pd.Series, raw_a: np.ndarray, raw_b: np.ndarray, metric: str,
                    resamples: int = RESAMPLES, seed: int = 0) -> dict[str, float]:
    """The difference metric(a) − metric(b) on ``values``' rows and its bootstrap interval (rows resampled with
    replacement, the same rows for both models)."""
    score_a, score_b = _scorer(output, values, raw_a, metric), _scorer(output, values, raw_b, metric)
    n = len(values)
    a, b = score_a(np.arange(n)), score_b(np.arange(n))
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(resamples):
        index = rng.integers(0, n, n)
        differences.append(score_a(index) - score_b(index))
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.nanpercentile(np.asarray(differences), [tail, 100 - tail])
    return {"a": a, "b": b, "difference": a - b, "low": float(low), "high": float(high), "rows": n,
            "resamples": resamples, "level": LEVEL}


def _scorer(output: Any, values: pd.Series, raw: np.ndarray, metric: str) -> Callable[[np.ndarray], float]:
    """metric(rows) for resampled row indices. The type's own ``metrics`` computes every metric it has (tens of
    milliseconds a call, minutes for a bootstrap), so the headline metric is computed directly from the raw outputs
    and the training targets -- and used only where it equals the type's own figure on all rows."""
    def slow(index: np.ndarray) -> float:
        return float(output.metrics(values.iloc[index], raw[index]).get(metric, np.nan))

    try:
        truth = output.transform(values).numpy()
    except Exception:  # noqa: BLE001 - e.g. a class the fitted output does not know: the type's own path copes
        return slow
    fast = _direct(metric, truth, raw)
    if fast is None:
        return slow
    every = np.arange(len(values))
    expected, got = slow(every), fast(every)
    scale = expected / got if metric == "rmse" and got > 0 else 1.0  # a standardised target: rmse scales by std
    if not np.isclose(got * scale, expected, rtol=1e-6, atol=1e-9):
        return slow
    return lambda index: fast(index) * scale


def _auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC from ranks (Mann-Whitney U; ties count half): a fraction of sklearn's per-call cost."""
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("one class only")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _direct(metric: str, truth: np.ndarray, raw: np.ndarray) -> Callable[[np.ndarray], float] | None:
    from scipy.special import softmax

    def guarded(score: Callable[[np.ndarray], float]) -> Callable[[np.ndarray], float]:
        def run(index: np.ndarray) -> float:
            try:
                return float(score(index))
            except ValueError:  # a resample with one class: the metric is undefined there
                return float("nan")
        return run

    if metric == "roc_auc" and raw.shape[1] == 1:  # one logit: ranking by it is ranking by the probability
        return guarded(lambda i: _auc(truth[i] == 1, raw[i, 0]))
    if metric == "roc_auc":  # one class against the rest, averaged over the classes (sklearn's "ovr", macro)
        proba = softmax(raw, axis=1)
        return guarded(lambda i: np.mean([_auc(truth[i] == c, proba[i, c]) for c in range(raw.shape[1])]))
    if metric == "accuracy" and raw.shape[1] > 1:
        return guarded(lambda i: np.mean(raw[i].argmax(1) == truth[i]))
    if metric == "rmse" and raw.shape[1] == 1:
        return guarded(lambda i: np.sqrt(np.mean((raw[i, 0] - truth[i]) ** 2)))
    return None


def cross_fitted(predictor: Predictor, config: Config, frames: dict[str, pd.DataFrame], score: Score,
                 folds: int = FOLDS) -> tuple[pd.DataFrame, Kept]:
    """Every labelled row predicted out of fold by a deep model (``trainer.folds`` as configured) and by the
    classical ones: the pooled rows and, per (model, output), the rows' index and raw outputs."""
    prep = predictor.preprocessor
    parts = [prep.drop_bad_inputs(prep.drop_missing_targets(f, name), name) for name, f in frames.items() if len(f)]
    pool = pd.concat(parts).reset_index(drop=True)
    first = prep.outputs[0]
    seed = config.trainer.seed
    outer = assign_folds(first.transform(pool[first.name]), folds, seed)
    train_part, valid_part, _ = config.data.split.fractions
    kept: Kept = {}
    with quiet():  # the inner runs' warnings repeat the main run's (a context-local threshold)
        for j in range(folds):
            rest, held = pool[outer != j], pool[outer == j]
            inner = {"train": rest, "test": held}
            if valid_part > 0:  # the usual roles inside the fold: early stopping and thresholds on validation
                every = max(2, round((train_part + valid_part) / valid_part))
                role = assign_folds(first.transform(rest[first.name]), every, seed + j)
                inner = {"train": rest[role != 0], "validation": rest[role == 0], "test": held}
            fitted = fit_auto(config, inner, verbose=False)
            found: Kept = {}
            score(fitted.predictor, inner, found)
            for key, (index, raw) in found.items():
                old = kept.get(key)
                kept[key] = (index, raw) if old is None else (old[0].append(index), np.concatenate([old[1], raw]))
    return pool, kept


def intervals(outputs: list[Any], rows: pd.DataFrame, kept: Kept, headline: Callable[[Any], tuple[str, bool]],
              where: str) -> dict[str, dict[str, Any]]:
    """Per output: the deep model against the best classical model on the rows every model scored."""
    found: dict[str, dict[str, Any]] = {}
    for output in outputs:
        models = {m: v for (m, o), v in kept.items() if o == output.name}
        if DEEP not in models or len(models) < 2:
            continue
        common = rows.index
        for index, _ in models.values():
            common = common.intersection(index)
        aligned = {m: pd.DataFrame(raw, index=index).loc[common].to_numpy() for m, (index, raw) in models.items()}
        values = rows.loc[common, output.name]
        metric, higher = headline(output)
        scores = {m: float(output.metrics(values, raw).get(metric, np.nan)) for m, raw in aligned.items()}
        classical = [m for m in aligned if m != DEEP]
        best = max(classical, key=lambda m: scores[m] if higher else -scores[m])
        interval = paired_interval(output, values, aligned[DEEP], aligned[best], metric)
        found[output.name] = {"metric": metric, "higher_is_better": higher, "against": best, "where": where,
                              "scores": scores, **interval}
    return found


def assess(predictor: Predictor, config: Config, frames: dict[str, pd.DataFrame], kept: Kept, score: Score,
           headline: Callable[[Any], tuple[str, bool]], cross_fit: bool | None = None) -> dict[str, dict[str, Any]]:
    """The intervals ``lamina compare`` reports: cross-fitted on every row for small data (``cross_fit`` None:
    under ``AUTO_FOLD_ROWS`` labelled rows and no file inputs), else bootstrapped over the test rows in ``kept``."""
    if any(t.sequence for t in predictor.preprocessor.outputs):
        return {}  # generated text: the counterparts' scores are corpus-level, not per row
    rows = sum(len(f) for f in frames.values())
    if cross_fit is None:
        cross_fit = rows < AUTO_FOLD_ROWS and not any(t.holds_paths for t in predictor.preprocessor.inputs)
    if cross_fit:
        pool, found = cross_fitted(predictor, config, frames, score)
        return intervals(predictor.preprocessor.outputs, pool, found, headline, f"out of fold on all {len(pool)} labelled rows "
                                                           f"({FOLDS} folds)")
    test = frames["test"]
    return intervals(predictor.preprocessor.outputs, test, kept, headline, f"over the {len(test)} test rows")


def verdict(name: str, found: dict[str, Any]) -> str:
    """One sentence: the difference, its interval, and whether it is a clear one."""
    metric, other = found["metric"], found["against"]
    better = found["difference"] > 0 if found["higher_is_better"] else found["difference"] < 0
    clear = not found["low"] <= 0 <= found["high"]
    how = f"{'beats' if better else 'trails'} {other}" if clear else f"shows no clear difference from {other}"
    return (f"On '{name}' the deep model {how} on {metric} ({found['a']:.4f} vs {found['b']:.4f}, "
            f"{found['where']}): deep − {other} = {found['difference']:+.4f}, {found['level']:.0%} interval "
            f"[{found['low']:+.4f}, {found['high']:+.4f}] (paired bootstrap over rows, {found['resamples']} "
            "resamples).")
