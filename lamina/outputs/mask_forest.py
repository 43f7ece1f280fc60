"""The mask output's classical counterpart: a per-pixel random forest on a filter bank, the ilastik recipe.

Each pixel is described by its intensity and, at several scales, the Gaussian-smoothed intensity, the gradient
magnitude, the Laplacian of Gaussian, and the eigenvalues of the structure tensor and of the Hessian (scikit-image
and SciPy filters); a random forest trained on a sample of the training pixels labels every test pixel. It is scored
with the network's own metrics (Dice first).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from lamina.errors import LaminaError

SIGMAS = (0.7, 1.6, 3.5, 5.0)
TRAIN_PIXELS = 60_000  # a forest on more pixels costs minutes for little Dice


def filter_bank(gray: np.ndarray, sigmas: tuple[float, ...] = SIGMAS) -> np.ndarray:
    """Per-pixel features ``(H, W, 1 + 7 · len(sigmas))`` of one float image."""
    try:
        from skimage.feature import (hessian_matrix, hessian_matrix_eigvals, structure_tensor,
                                     structure_tensor_eigenvalues)
    except ModuleNotFoundError:
        raise LaminaError("the mask's random-forest counterpart needs scikit-image: pip install 'lamina[classical]'"
                          ) from None
    planes = [gray]
    for sigma in sigmas:
        planes.append(ndimage.gaussian_filter(gray, sigma))
        planes.append(ndimage.gaussian_gradient_magnitude(gray, sigma))
        planes.append(ndimage.gaussian_laplace(gray, sigma))
        planes.extend(structure_tensor_eigenvalues(structure_tensor(gray, sigma=sigma, order="rc")))
        planes.extend(hessian_matrix_eigvals(hessian_matrix(gray, sigma=sigma, order="rc", use_gaussian_derivatives=True)))
    return np.stack(planes, axis=-1).astype(np.float32)


def _features(images: np.ndarray) -> np.ndarray:
    """``(n, H, W, F)`` features of ``(n, C, H, W)`` pixels (channels averaged, scaled to [0, 1])."""
    gray = images.astype(np.float32).mean(1) / max(float(images.max()), 1.0)
    return np.stack([filter_bank(g) for g in gray])


def fit_forest(images: np.ndarray, labels: np.ndarray, seed: int = 0) -> Any:
    """A random forest on a seeded sample of the training pixels' filter-bank features."""
    from sklearn.ensemble import RandomForestClassifier

    x = _features(images).reshape(-1, 1 + 7 * len(SIGMAS))
    y = labels.reshape(-1)
    rng = np.random.default_rng(seed)
    take = rng.choice(len(y), min(TRAIN_PIXELS, len(y)), replace=False)
    forest = RandomForestClassifier(n_estimators=60, min_samples_leaf=2, n_jobs=1, random_state=seed)
    return forest.fit(x[take], y[take])


def forest_raw(forest: Any, images: np.ndarray, classes: int) -> np.ndarray:
    """Log-probabilities ``(n, classes, H, W)``: the network's raw-output shape, for the same metrics."""
    features = _features(images)
    n, height, width, f = features.shape
    proba = np.full((n * height * width, classes), 1e-6)
    proba[:, forest.classes_.astype(int)] = np.clip(forest.predict_proba(features.reshape(-1, f)), 1e-6, 1)
    return np.log(proba).reshape(n, height, width, classes).transpose(0, 3, 1, 2)


def counterparts(output: Any, inputs: list[Any], split: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    source = next((t for t in inputs if t.spatial), None)
    if source is None:
        raise LaminaError(f"output '{output.name}': the random-forest counterpart reads an image input; there is none")
    train, test = split["train"], split["test"]
    started = time.perf_counter()
    images = source.transform(train[source.name]).numpy()
    labels = output.transform(train[output.name]).numpy()
    if labels.shape[-2:] != images.shape[-2:]:
        raise LaminaError(f"output '{output.name}': masks of {labels.shape[-2:]} px beside images of "
                          f"{images.shape[-2:]} px; give the mask and the image the same size option")
    forest = fit_forest(images, labels)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    raw = forest_raw(forest, source.transform(test[source.name]).numpy(), len(output.state["classes"]))
    predict_seconds = time.perf_counter() - started
    return [{"model": "filter bank + random forest", "output": output.name, "train_seconds": train_seconds,
             "predict_seconds": predict_seconds,
             "metrics": {"rows": len(test), **output.metrics(test[output.name], raw)}}]
