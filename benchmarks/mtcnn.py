"""MTCNN face detection (lamina.inputs.image_faces_*) on real pictures that ship with scikit-image, against the
reference (facenet-pytorch's own nets and ``detect_face``, run from its wheel with our NMS): detection rate on the
100 LFW face crops, false detections on the 100 non-faces, agreement with the reference, and faces per second.

    OMP_NUM_THREADS=1 python benchmarks/mtcnn.py [--repeats 5]

Needs the wheel: ``pip download --no-deps facenet-pytorch==2.6.0 -d ~/.cache/lamina/wheels``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the reference harness lives with the parity test

from mtcnn_reference import lfw_tiles, mosaic, reference, run_reference  # noqa: E402
from skimage import data  # noqa: E402

from lamina.inputs.image_faces_detect import Detector  # noqa: E402
from lamina.inputs.image_faces_nets import find_wheel  # noqa: E402


def rates(detect: Callable[[np.ndarray], int], side: int) -> tuple[float, int]:
    """Share of the 100 LFW faces with a detection, and how many non-face crops got any."""
    faces = [detect(t) for t in lfw_tiles(range(100), side)]
    others = [detect(t) for t in lfw_tiles(range(100, 200), side)]
    return float(np.mean([n > 0 for n in faces])), int(sum(n > 0 for n in others))


def timed(detect: Callable[[np.ndarray], Any], pixels: np.ndarray, repeats: int) -> float:
    detect(pixels)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        detect(pixels)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ours, ref = Detector(), reference(find_wheel())

    def theirs(pixels: np.ndarray) -> np.ndarray:
        return run_reference(ref, pixels)[0]

    print("detection on scikit-image's lfw_subset (25x25 grey crops, enlarged bicubic)")
    print(f"{'side':>5} {'faces found (of 100)':>22} {'non-faces with a detection (of 100)':>37}")
    for side in (25, 50, 100):
        found, false = rates(lambda p: len(ours.detect(p)), side)
        print(f"{side:>5} {found:>22.2f} {false:>37d}")
    print("\nagreement and speed against facenet-pytorch's detect_face (our NMS), one thread")
    print(f"{'photo':>10} {'faces':>6} {'ref faces':>10} {'max |box diff| px':>18} {'ours ms':>8} {'ref ms':>8} "
          f"{'faces/s':>8} {'ref/ours':>9}")
    for name, pixels in (("astronaut", data.astronaut()), ("mosaic16", mosaic()), ("coffee", data.coffee())):
        found, boxes = ours.detect(pixels), theirs(pixels)
        order = np.argsort(-boxes[:, 4], kind="stable")
        diff = float(np.abs(found.boxes - boxes[order, :4]).max()) if len(found) == len(boxes) > 0 else float("nan")
        ours_s, ref_s = timed(ours.detect, pixels, args.repeats), timed(theirs, pixels, args.repeats)
        rate = len(found) / ours_s if len(found) else float("nan")
        print(f"{name:>10} {len(found):>6} {len(boxes):>10} {diff:>18.4f} {ours_s * 1e3:>8.1f} {ref_s * 1e3:>8.1f} "
              f"{rate:>8.1f} {ref_s / ours_s:>9.2f}")


if __name__ == "__main__":
    main()
