"""Average precision as COCO computes it (pycocotools' ``COCOeval`` for boxes, area "all", 100 detections per image
and class): greedy matching by score, 101-point interpolated precision, IoU thresholds 0.50:0.05:0.95.

Our own code, so scoring needs no compiled extension; ``tests/test_boxes_metrics.py`` checks it against pycocotools.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALLS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = 100


@dataclass(frozen=True)
class Detections:
    """One image's boxes ``(m, 4)`` (x0, y0, x1, y1), class indices ``(m,)`` and scores ``(m,)`` (truth: ones)."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``(len(a), len(b))`` of boxes (x0, y0, x1, y1)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _match(truth: np.ndarray, found: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One image and class: the kept detections' scores and, per threshold, which of them matched a truth box."""
    order = np.argsort(-scores, kind="mergesort")[:MAX_DETECTIONS]
    found, scores = found[order], scores[order]
    ious = iou_matrix(found, truth)
    matched = np.zeros((len(THRESHOLDS), len(found)), dtype=bool)
    for t, threshold in enumerate(THRESHOLDS):
        taken = np.zeros(len(truth), dtype=bool)
        for d in range(len(found)):
            best, which = min(threshold, 1 - 1e-10), -1
            for g in range(len(truth)):
                if taken[g] or ious[d, g] < best:
                    continue
                best, which = ious[d, g], g
            if which >= 0:
                taken[which] = matched[t, d] = True
    return scores, matched


def _precision(scores: list[np.ndarray], matched: list[np.ndarray], truths: int) -> np.ndarray:
    """Interpolated precision ``(thresholds, recalls)`` of one class over every image."""
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    order = np.argsort(-all_scores, kind="mergesort")
    hits = np.concatenate(matched, axis=1)[:, order] if matched else np.zeros((len(THRESHOLDS), 0), bool)
    result = np.zeros((len(THRESHOLDS), len(RECALLS)))
    for t in range(len(THRESHOLDS)):
        tp = np.cumsum(hits[t]).astype(float)
        fp = np.cumsum(~hits[t]).astype(float)
        recall = tp / truths
        precision = tp / (tp + fp + np.spacing(1))
        precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
        at = np.searchsorted(recall, RECALLS, side="left")
        ok = at < len(precision)
        result[t, ok] = precision[at[ok]]
    return result


def _class_matches(truth: list[Detections], predicted: list[Detections], c: int
                   ) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    scores, matched, truths = [], [], 0
    for t, p in zip(truth, predicted):
        g = t.boxes[t.labels == c]
        keep = p.labels == c
        truths += len(g)
        if keep.any():
            s, m = _match(g, p.boxes[keep], p.scores[keep])
            scores.append(s)
            matched.append(m)
    return scores, matched, truths


def pr_curve(truth: list[Detections], predicted: list[Detections], c: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Recall and (raw, not interpolated) precision of class ``c`` at IoU 0.5 down the score ranking; None when
    the class has no truth box or no detection."""
    scores, matched, truths = _class_matches(truth, predicted, c)
    if not truths or not scores:
        return None
    order = np.argsort(-np.concatenate(scores), kind="mergesort")
    hits = np.concatenate(matched, axis=1)[0, order]
    tp = np.cumsum(hits)
    return tp / truths, tp / np.arange(1, len(hits) + 1)


def average_precision(truth: list[Detections], predicted: list[Detections], classes: int) -> np.ndarray:
    """AP ``(classes, thresholds)``; NaN for a class with no truth box."""
    ap = np.full((classes, len(THRESHOLDS)), np.nan)
    for c in range(classes):
        scores, matched, truths = _class_matches(truth, predicted, c)
        if truths:
            ap[c] = _precision(scores, matched, truths).mean(axis=1)
    return ap


def detection_metrics(truth: list[Detections], predicted: list[Detections], names: list[str]) -> dict[str, float]:
    """mAP@0.5, mAP@[.5:.95] (means over the classes with truth boxes) and AP@0.5 per class."""
    ap = average_precision(truth, predicted, len(names))
    present = ~np.isnan(ap[:, 0])
    result = {
        "map50": float(ap[present, 0].mean()) if present.any() else float("nan"),
        "map": float(ap[present].mean()) if present.any() else float("nan"),
        "map75": float(ap[present, 5].mean()) if present.any() else float("nan"),
    }
    result.update({f"ap50_{name}": float(ap[c, 0]) for c, name in enumerate(names) if present[c]})
    return result
