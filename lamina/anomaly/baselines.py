"""The classical detectors beside the network, on the same training rows and features: Isolation Forest, the
Local Outlier Factor (novelty mode: fitted on training, scoring new rows) and the mean distance to the k nearest
training rows. Each is scikit-learn's; a higher score is more unusual for all three."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np

from lamina.anomaly.thresholds import threshold
from lamina.config import AnomalyConfig

FIT_ROWS = 20_000  # LOF and kNN keep their training rows and search them per row scored: a sample bounds the cost


def detectors(neighbours: int, seed: int) -> dict[str, Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]]]:
    """name → fit(x_train) → score(x)."""
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors

    def isolation_forest(x: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        model = IsolationForest(n_estimators=200, random_state=seed, n_jobs=1).fit(x)
        return lambda rows: -model.score_samples(rows)

    def lof(x: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        model = LocalOutlierFactor(n_neighbors=neighbours, novelty=True).fit(_sample(x, seed))
        return lambda rows: -model.score_samples(rows)

    def knn(x: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        model = NearestNeighbors(n_neighbors=neighbours).fit(_sample(x, seed))
        return lambda rows: model.kneighbors(rows)[0].mean(1)

    return {"isolation_forest": isolation_forest, "lof": lof, "knn": knn}


def fitted_detectors(config: AnomalyConfig, seed: int, train: np.ndarray, valid: np.ndarray
                     ) -> Iterator[tuple[str, Callable[[np.ndarray], np.ndarray], float, float]]:
    """Each of ``config.baselines`` fitted on ``train``: its name, scoring function, threshold (by the config's
    strategy, from the scores of ``valid``, the rows the network's threshold came from; of ``train`` if none) and
    seconds to fit."""
    for name, fit in detectors(config.neighbours, seed).items():
        if name not in config.baselines:
            continue
        started = time.perf_counter()
        score = fit(train)
        seconds = time.perf_counter() - started
        yield name, score, threshold(score(valid) if len(valid) else score(train), config), seconds


def _sample(x: np.ndarray, seed: int) -> np.ndarray:
    if len(x) <= FIT_ROWS:
        return x
    return x[np.sort(np.random.default_rng(seed).choice(len(x), FIT_ROWS, replace=False))]
