"""Object detection: Lamina's boxes output against HOG + linear SVM sliding windows on pybullet street scenes
(examples/driving/make_data.py; held-out scenes with camera poses not seen in training), and the pure-torch NMS
against a reference loop on 1,000 and 8,000 random boxes and 8,000 clustered ones (same kept boxes, time).

    OMP_NUM_THREADS=1 python benchmarks/detection.py nms
    OMP_NUM_THREADS=1 python benchmarks/detection.py scenes --train 300 --heldout 100 --epochs 40

Both sides score with the same COCO AP code (lamina.outputs.boxes_metrics, checked against pycocotools in the tests).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def reference_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Fast R-CNN's py_cpu_nms (without its +1 pixel): the loop most detectors were checked against."""
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0) * (y1 - y0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x1[i], x1[order[1:]]) - np.maximum(x0[i], x0[order[1:]]))
        h = np.maximum(0.0, np.minimum(y1[i], y1[order[1:]]) - np.maximum(y0[i], y0[order[1:]]))
        inter = w * h
        overlap = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[1:][overlap <= iou]
    return keep


def bench_nms(repeats: int = 5) -> None:
    from lamina.outputs.boxes_nms import nms

    rng = np.random.default_rng(0)
    print("boxes  layout     kept  same  lamina_ms  reference_ms  ratio")
    for n, layout in ((1000, "random"), (8000, "random"), (8000, "clustered")):
        xy = rng.uniform(0, 1000, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(10, 120, (n, 2))], 1)
        if layout == "clustered":  # a detector's raw output: jittered copies of 200 boxes
            boxes = boxes[rng.integers(0, 200, n)] + rng.normal(0, 4, (n, 4))
        scores = rng.uniform(size=n)
        ours, theirs = [], []
        for _ in range(repeats):  # alternated, medians reported
            start = time.perf_counter()
            kept = nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).tolist()
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            reference = reference_nms(boxes, scores, 0.5)
            theirs.append(time.perf_counter() - start)
        a, b = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
        print(f"{n:5d}  {layout:9s}  {len(kept):4d}  {kept == reference!s:5}  {a:9.1f}  {b:12.1f}  {a / b:5.2f}")


def bench_scenes(train: int, heldout: int, epochs: int) -> None:
    import yaml

    import lamina
    from lamina.data.read import read_table
    sys.path.insert(0, str(ROOT / "examples" / "driving"))
    from make_data import make

    folder = Path(tempfile.mkdtemp(prefix="lamina-detection-"))
    started = time.perf_counter()
    make(folder / "train", train, 0, "train")
    make(folder / "heldout", heldout, 1, "heldout")
    print(f"rendered {train} + {heldout} scenes in {time.perf_counter() - started:.0f} s ({folder})")
    config = {"name": "driving", "data": {"path": str(folder / "train" / "annotations.json"),
                                          "split": {"method": "random", "fractions": [0.85, 0.15, 0.0], "seed": 0}},
              "inputs": [{"name": "image", "type": "image", "options": {"rotation": 0, "flip": True}}],
              "outputs": [{"name": "objects", "type": "boxes"}],
              "trainer": {"epochs": epochs, "batch_size": 16, "learning_rate": 0.002, "time_limit": "40m",
                          "early_stopping": {"patience": epochs, "metric": "loss"}, "folds": 1}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    lamina.train(folder / "config.yaml", output=folder / "runs" / "driving")
    minutes = (time.perf_counter() - started) / 60
    model = lamina.load(folder / "runs" / "driving")
    test = read_table(folder / "heldout" / "annotations.json")
    started = time.perf_counter()
    ours = model.evaluate(test)["objects"]
    per_second = len(test) / (time.perf_counter() - started)
    frame = read_table(folder / "train" / "annotations.json")
    output = model.preprocessor.outputs[0]
    hog = output.classical_counterparts(model.preprocessor.inputs, {"train": frame, "test": test})[0]
    print(json.dumps({"lamina": ours, "hog_svm": hog["metrics"], "lamina_train_minutes": round(minutes, 1),
                      "lamina_images_per_second": round(per_second, 1),
                      "hog_train_seconds": round(hog["train_seconds"], 1),
                      "hog_images_per_second": round(len(test) / hog["predict_seconds"], 1)}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["nms", "scenes"])
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--heldout", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.what == "nms":
        bench_nms()
    else:
        bench_scenes(args.train, args.heldout, args.epochs)


if __name__ == "__main__":
    main()
