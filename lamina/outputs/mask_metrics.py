"""Segmentation metrics of label maps: Dice and IoU per class, Hausdorff-95, lesion-level detection, and the
scan-level abnormality (has a lesion or not) scored by ROC-AUC from the mask's probabilities.

Per class, Dice and IoU are averaged over the images where that class is in the truth or the prediction (an
image where both are empty says nothing about outlining it). Lesions are the connected regions of foreground (any
class but the background): a true lesion is found when its Dice with the predicted regions that touch it exceeds
0.1; a predicted region that finds no true lesion is a false positive.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage
from scipy.special import softmax

FOUND_DICE = 0.1  # the lesion-level detection criterion


def dice_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float] | None:
    """Dice and IoU of two boolean masks; None when both are empty."""
    p, t = pred.sum(), truth.sum()
    if p + t == 0:
        return None
    both = np.logical_and(pred, truth).sum()
    return float(2 * both / (p + t)), float(both / (p + t - both))


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def hausdorff95(pred: np.ndarray, truth: np.ndarray) -> float | None:
    """The 95th percentile of the symmetric surface distances (pixels); None unless both masks have pixels."""
    if not pred.any() or not truth.any():
        return None
    sp, st = _surface(pred), _surface(truth)
    to_truth = ndimage.distance_transform_edt(~st)[sp]
    to_pred = ndimage.distance_transform_edt(~sp)[st]
    return float(np.percentile(np.concatenate([to_truth, to_pred]), 95))


def lesions(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """True lesions, those found (Dice > 0.1 with the predicted regions touching them), and false positives."""
    truth_labels, n_truth = ndimage.label(truth)
    pred_labels, n_pred = ndimage.label(pred)
    found, matched = 0, set()
    for k in range(1, n_truth + 1):
        lesion = truth_labels == k
        touching = np.setdiff1d(np.unique(pred_labels[lesion]), [0])
        if touching.size == 0:
            continue
        region = np.isin(pred_labels, touching)
        if 2 * np.logical_and(region, lesion).sum() / (region.sum() + lesion.sum()) > FOUND_DICE:
            found += 1
            matched.update(int(j) for j in touching)
    return n_truth, found, n_pred - len(matched)


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    if label.all() or not label.any():
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(label, score))


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def mask_metrics(raw: np.ndarray, truth: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Metrics of class logits ``raw`` (n, K, H, W) against class-index maps ``truth`` (n, H, W)."""
    proba = softmax(raw.astype(np.float64), axis=1)
    pred = proba.argmax(1)
    out: dict[str, Any] = {}
    dices, ious, distances = [], [], []
    for c in range(1, len(classes)):
        pairs = [d for d in (dice_iou(p == c, t == c) for p, t in zip(pred, truth)) if d is not None]
        out[f"dice_{classes[c]}"] = _mean([d for d, _ in pairs])
        out[f"iou_{classes[c]}"] = _mean([i for _, i in pairs])
        dices.append(out[f"dice_{classes[c]}"])
        ious.append(out[f"iou_{classes[c]}"])
        distances += [h for h in (hausdorff95(p == c, t == c) for p, t in zip(pred, truth)) if h is not None]
    counts = np.array([lesions(p > 0, t > 0) for p, t in zip(pred, truth)]).reshape(-1, 3)
    abnormal = (truth > 0).reshape(len(truth), -1).any(1)
    score = 1 - proba[:, 0].reshape(len(truth), -1).min(1)  # the most confident foreground pixel
    out.update({
        "dice": _mean([d for d in dices if np.isfinite(d)]),
        "iou": _mean([i for i in ious if np.isfinite(i)]),
        "hausdorff95": _mean(distances),
        "lesions": int(counts[:, 0].sum()),
        "lesion_sensitivity": float(counts[:, 1].sum() / counts[:, 0].sum()) if counts[:, 0].sum() else float("nan"),
        "lesion_fp_per_image": float(counts[:, 2].sum() / max(len(truth), 1)),
        "abnormality_roc_auc": _auc(score, abnormal),
    })
    return out
