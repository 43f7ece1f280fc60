"""The boxes output's classical counterpart for ``lamina compare``: Dalal and Triggs' detector. Per class a linear
SVM on HOG features of a window shaped like the class's boxes (their median aspect), trained on the training boxes
against random background windows plus one round of hard negatives, then slid over an image pyramid (HOG computed
once per scale, windows read off its block grid) with per-class NMS -- scored with the same COCO AP as the network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from lamina.outputs.boxes_metrics import Detections, iou_matrix
from lamina.outputs.boxes_nms import nms

CELL, BLOCK, ORIENTATIONS = 6, 2, 9
CELLS = 36  # cells per window, about (6 × 6 at a square window)
SCALES = 5  # window sizes per class: geometric steps between the training boxes' 10th and 90th height percentile
NEGATIVES = 8  # random background windows per training image and class
MAX_DETECTIONS = 100
HARD_IMAGES = 40  # training images searched for hard negatives


@dataclass
class ClassDetector:
    cells: tuple[int, int]  # window rows, columns in cells
    heights: list[float]  # window heights (canvas pixels) slid over the pyramid
    model: Any = None


def _gray(images: np.ndarray) -> np.ndarray:
    """``(n, H, W)`` in [0, 1] from 8- or 16-bit pixels (a scan's 16 bits would otherwise clip to white)."""
    top = np.iinfo(images.dtype).max if np.issubdtype(images.dtype, np.integer) else 255
    return images.astype(np.float32).mean(axis=1) / top


def _blocks(image: np.ndarray) -> np.ndarray:
    from skimage.feature import hog

    return hog(image, orientations=ORIENTATIONS, pixels_per_cell=(CELL, CELL), cells_per_block=(BLOCK, BLOCK),
               feature_vector=False)


def _crop_features(image: np.ndarray, box: np.ndarray, cells: tuple[int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    crop = Image.fromarray(np.clip(image * 255, 0, 255).astype(np.uint8)).crop((int(x0), int(y0), int(np.ceil(x1)),
                                                                                 int(np.ceil(y1))))
    crop = np.asarray(crop.resize((cells[1] * CELL, cells[0] * CELL), Image.BILINEAR), np.float32) / 255
    return _blocks(crop).ravel()


def _windows(image: np.ndarray, d: ClassDetector) -> tuple[np.ndarray, np.ndarray]:
    """Features and canvas boxes of every window of every scale."""
    features, boxes = [], []
    rows, cols = d.cells
    for height in d.heights:
        factor = rows * CELL / height
        h, w = int(round(image.shape[0] * factor)), int(round(image.shape[1] * factor))
        if h < rows * CELL or w < cols * CELL:
            continue
        scaled = np.asarray(Image.fromarray(np.clip(image * 255, 0, 255).astype(np.uint8)).resize((w, h), Image.BILINEAR),
                            np.float32) / 255
        grid = _blocks(scaled)  # (block rows, block columns, BLOCK, BLOCK, ORIENTATIONS)
        br, bc = rows - BLOCK + 1, cols - BLOCK + 1
        if grid.shape[0] < br or grid.shape[1] < bc:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(grid, (br, bc), axis=(0, 1))
        windows = windows.transpose(0, 1, 5, 6, 2, 3, 4)  # each window's blocks in the order a crop's HOG has them
        features.append(windows.reshape(windows.shape[0] * windows.shape[1], -1))
        r, c = np.meshgrid(np.arange(windows.shape[0]), np.arange(windows.shape[1]), indexing="ij")
        r, c = r.ravel().astype(np.float64), c.ravel().astype(np.float64)
        boxes.append(np.stack([c, r, c + cols, r + rows], 1) * CELL / factor)
    if not features:
        return np.zeros((0, 1)), np.zeros((0, 4))
    return np.concatenate(features), np.concatenate(boxes)


def _negatives(rng: np.random.Generator, truth: Detections, shape: tuple[int, int], d: ClassDetector) -> np.ndarray:
    boxes = []
    for _ in range(NEGATIVES * 4):
        height = float(rng.choice(d.heights))
        width = height * d.cells[1] / d.cells[0]
        if width >= shape[1] or height >= shape[0]:
            continue
        x, y = rng.uniform(0, shape[1] - width), rng.uniform(0, shape[0] - height)
        box = np.array([x, y, x + width, y + height])
        if len(truth.boxes) == 0 or iou_matrix(box[None], truth.boxes).max() < 0.3:
            boxes.append(box)
        if len(boxes) == NEGATIVES:
            break
    return np.array(boxes).reshape(-1, 4)


def _plan(truth: list[Detections], c: int) -> ClassDetector:
    boxes = np.concatenate([t.boxes[t.labels == c] for t in truth])
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    aspect = float(np.median(w / h))  # width / height
    rows = max(BLOCK, int(round(np.sqrt(CELLS / aspect))))
    cols = max(BLOCK, int(round(CELLS / rows)))
    low, high = np.percentile(h, [10, 90])
    return ClassDetector((rows, cols), list(np.geomspace(max(low, 4.0), max(high, low + 1, 4.0), SCALES)))


def _train_class(images: np.ndarray, truth: list[Detections], c: int, seed: int) -> ClassDetector:
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(seed)
    d = _plan(truth, c)
    positives = [_crop_features(img, b, d.cells) for img, t in zip(images, truth) for b in t.boxes[t.labels == c]]
    negatives = [_crop_features(img, b, d.cells) for img, t in zip(images, truth)
                 for b in _negatives(rng, t, img.shape, d)]
    x, y = np.stack(positives + negatives), np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    d.model = LinearSVC(C=0.01, class_weight="balanced", max_iter=5000).fit(x, y)
    hard = []  # one round of hard negatives: windows the first model scores highest away from every box
    for index in rng.permutation(len(images))[:HARD_IMAGES]:
        features, boxes = _windows(images[index], d)
        if not len(boxes):
            continue
        scores = d.model.decision_function(features)
        overlap = iou_matrix(boxes, truth[index].boxes).max(1) if len(truth[index].boxes) else np.zeros(len(boxes))
        wrong = np.flatnonzero((overlap < 0.3) & (scores > -0.5))
        hard += [features[i] for i in wrong[np.argsort(-scores[wrong])][:10]]
    if hard:
        x, y = np.concatenate([x, np.stack(hard)]), np.r_[y, np.zeros(len(hard))]
        d.model = LinearSVC(C=0.01, class_weight="balanced", max_iter=5000).fit(x, y)
    return d


def detect_all(detectors: dict[int, ClassDetector], images: np.ndarray) -> list[Detections]:
    found = []
    for image in images:
        boxes, scores, labels = [], [], []
        for c, d in detectors.items():
            features, windows = _windows(image, d)
            if not len(windows):
                continue
            s = 1 / (1 + np.exp(-d.model.decision_function(features)))  # a score in (0, 1), ordered as the SVM's
            keep = np.flatnonzero(s > 0.2)
            kept = nms(torch.from_numpy(windows[keep]), torch.from_numpy(s[keep]), 0.3).numpy()[:MAX_DETECTIONS]
            boxes.append(windows[keep][kept]), scores.append(s[keep][kept]), labels.append(np.full(len(kept), c))
        if boxes:
            b, s, l = np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels)
            top = np.argsort(-s, kind="stable")[:MAX_DETECTIONS]
            found.append(Detections(b[top], l[top], s[top]))
        else:
            found.append(Detections(np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0)))
    return found


def counterparts(output: Any, inputs: list[Any], split: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """One compare row: HOG + linear SVM sliding windows + NMS, scored on the test split."""
    from lamina.outputs.boxes_metrics import detection_metrics

    image = next(t for t in inputs if t.spatial)
    started = time.perf_counter()
    train = _gray(image.transform(split["train"][image.name]).numpy())
    truth = output.truth(split["train"][output.name])
    detectors = {c: _train_class(train, truth, c, seed=c) for c in range(len(output.state["classes"]))
                 if any((t.labels == c).any() for t in truth)}
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    test = split["test"]
    found = detect_all(detectors, _gray(image.transform(test[image.name]).numpy()))
    metrics = detection_metrics(output.truth(test[output.name]), found, list(output.state["classes"]))
    return [{"model": "HOG + linear SVM (sliding windows, NMS)", "output": output.name,
             "train_seconds": train_seconds, "predict_seconds": time.perf_counter() - started,
             "metrics": {"rows": len(test), **metrics}}]
