"""The image type's classical counterpart for ``lamina compare``: histograms of oriented gradients (scikit-image's
``hog``, Dalal & Triggs) beside the pixels and per-channel statistics, read by standardise → PCA → an RBF SVM."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lamina.errors import LaminaError
from lamina.inputs.classical import Family, Featurizer, Features, Model


def hog(images: np.ndarray, cells: int = 4, bins: int = 9) -> np.ndarray:
    """HOG of uint8 ``(n, C, H, W)`` images (channels averaged): a ``cells`` × ``cells`` grid of unsigned orientation
    histograms, L2-Hys normalised over 2 × 2 blocks of cells; ``(n, (cells - 1)² · 4 · bins)``."""
    try:
        from skimage.feature import hog as skimage_hog
    except ModuleNotFoundError:
        raise LaminaError("image features for lamina compare need scikit-image: pip install 'lamina[classical]'") from None
    n, _, height, width = images.shape
    cells = max(2, min(cells, height, width))
    size = (max(1, height // cells), max(1, width // cells))
    gray = images.astype(np.float32).mean(1)
    out = [skimage_hog(g[: size[0] * cells, : size[1] * cells], orientations=bins, pixels_per_cell=size,
                       cells_per_block=(2, 2), block_norm="L2-Hys", feature_vector=True) for g in gray]
    return np.asarray(out, dtype=np.float64).reshape(n, -1)


def _svm(classes: bool, seed: int, folds: int) -> dict[str, Model]:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR

    def svm() -> Any:
        if not classes:
            return make_pipeline(StandardScaler(), PCA(0.95, svd_solver="full", random_state=seed), SVR())
        # probabilities by Platt scaling fitted out of fold (SVC(probability=True) is deprecated)
        svc = CalibratedClassifierCV(SVC(C=10, random_state=seed), ensemble=False, cv=folds)
        return make_pipeline(StandardScaler(), PCA(0.95, svd_solver="full", random_state=seed), svc)

    return {"hog+pca+svm": Model(svm)}


KERNEL = Family("hog+pca+svm", 2, _svm)


class ImageFeaturizer(Featurizer):
    family = KERNEL

    def features(self, values: pd.Series) -> Features:
        pixels = self.column.transform(values).numpy()
        top = self.column.full_scale
        stats = np.c_[pixels.mean((2, 3)), pixels.std((2, 3))]
        return Features({}, [hog(pixels), pixels.reshape(len(pixels), -1) / top, stats / top])
