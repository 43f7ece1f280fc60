"""Five-point face alignment: the similarity transform (rotation, uniform scale, shift; Umeyama 1991) that puts a
face's landmarks nearest, in least squares, to where ArcFace's 112×112 template has them, applied with Pillow."""

from __future__ import annotations

import numpy as np
from PIL import Image

# Left eye, right eye, nose tip, left and right mouth corner in a 112×112 crop (the insightface/ArcFace template).
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                     [70.7299, 92.2041]])
TEMPLATE_SIDE = 112


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2×3 matrix ``[sR | t]`` minimising ``Σ |sR·source + t − target|²`` over rotations R (no reflection)."""
    mean_s, mean_t = source.mean(0), target.mean(0)
    s, t = source - mean_s, target - mean_t
    u, singular, vt = np.linalg.svd(t.T @ s / len(source))
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(singular) @ sign) / max(s.var(0).sum(), 1e-12))
    return np.hstack([scale * rotation, (mean_t - scale * rotation @ mean_s)[:, None]])


def align(image: Image.Image, landmarks: np.ndarray, side: int = TEMPLATE_SIDE) -> Image.Image:
    """The face with these five landmarks, rotated upright and scaled into a ``side``² crop."""
    matrix = similarity(np.asarray(landmarks, dtype=np.float64), TEMPLATE * (side / TEMPLATE_SIDE))
    # Pillow maps each output pixel back to the input: the inverse of the transform.
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    return image.transform((side, side), Image.Transform.AFFINE, tuple(inverse.ravel()),
                           resample=Image.Resampling.BILINEAR)
