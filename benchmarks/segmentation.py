"""Segmentation: Lamina's mask output (U-Net decoder on the image encoder) against the per-pixel random forest on
an ilastik filter bank (the mask type's classical counterpart), scored with the same Dice, on two sets:

* ``phantoms``: CT-like DICOM scans from examples/scans/make_data.py (randomised phantoms, lesions, radon/iradon):
  Lamina and the forest train on one set of phantoms (seed 0) and are scored on unseen phantoms (seed 1);
* ``nuclei``: the real 2018 Data Science Bowl fluorescence image (512 × 512, 125 nuclei) inside the stardist
  wheel (``pip download --no-deps stardist``; the image is read out of the wheel, stardist is never installed):
  overlapping 64 px tiles of its left three quarters train, the 16 tiles of its right quarter are held out.

    .venv/bin/python benchmarks/segmentation.py --wheel PATH/stardist-*.whl [--sets phantoms nuclei] [--epochs N]
        [--cases N] [--widths 16 32 64] [--batch 16]

Figures: Dice, IoU, lesion sensitivity (phantoms) on the held-out images for both models, training seconds, and
prediction images per second. One torch thread (the machine is shared).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lamina  # noqa: E402
from lamina.outputs.mask_forest import fit_forest, forest_raw  # noqa: E402

TILE = 64


def config(folder: Path, epochs: int, batch: int, widths: list[int]) -> dict:
    return {
        "name": "segmentation",
        "data": {"train": str(folder / "train.csv"), "validation": str(folder / "validation.csv"),
                 "test": str(folder / "test.csv")},
        "inputs": [{"name": "image", "type": "image", "options": {"widths": widths, "encoder": "cnn",
                                                                    "rotation": 15, "flip": True}}],
        "outputs": [{"name": "mask", "type": "mask"}],
        "trainer": {"epochs": epochs, "batch_size": batch, "learning_rate": 0.003, "schedule": "onecycle",
                    "early_stopping": {"patience": epochs, "metric": "mask.dice"}, "seed": 0},
    }


def phantoms(folder: Path, cases: int) -> None:
    sys.path.insert(0, str(ROOT / "examples" / "scans"))
    from make_data import make

    seen = make(folder / "seen", cases, 64, seed=0)
    unseen = make(folder / "unseen", cases // 2, 64, seed=1)
    train = int(cases * 0.8)
    for frame, sub in ((seen, "seen"), (unseen, "unseen")):
        for column in frame.columns:
            frame[column] = [str(folder / sub / p) for p in frame[column]]
    seen.rename(columns={"lesion_mask": "mask"}).iloc[:train].to_csv(folder / "train.csv", index=False)
    seen.rename(columns={"lesion_mask": "mask"}).iloc[train:].to_csv(folder / "validation.csv", index=False)
    unseen.rename(columns={"lesion_mask": "mask"}).to_csv(folder / "test.csv", index=False)


def nuclei(folder: Path, wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        image = np.asarray(Image.open(io.BytesIO(archive.read("stardist/data/images/img2d.tif"))))
        labels = np.asarray(Image.open(io.BytesIO(archive.read("stardist/data/images/mask2d.tif"))))
    pixels = np.clip(image, 0, 255).astype(np.uint8)  # the file holds 0-235 in uint16
    mask = (labels > 0).astype(np.uint8)
    (folder / "tiles").mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, str]]] = {"train": [], "validation": [], "test": []}
    held_out = 512 - 128  # the right quarter
    for y in range(0, 512 - TILE + 1, 32):
        for x in range(0, 512 - TILE + 1, 32):
            if x + TILE <= held_out:
                split = "validation" if y >= 448 - 32 and x < 128 else "train"
            elif x >= held_out and x % TILE == 0 and y % TILE == 0:
                split = "test"
            else:
                continue  # straddles the border: neither
            name = f"{split}_{y:03d}_{x:03d}"
            Image.fromarray(pixels[y:y + TILE, x:x + TILE]).save(folder / "tiles" / f"{name}.png")
            Image.fromarray(mask[y:y + TILE, x:x + TILE]).save(folder / "tiles" / f"{name}_mask.png")
            rows[split].append({"image": str(folder / "tiles" / f"{name}.png"),
                                "mask": str(folder / "tiles" / f"{name}_mask.png")})
    for split, found in rows.items():
        pd.DataFrame(found).to_csv(folder / f"{split}.csv", index=False)


def compare(folder: Path, epochs: int, batch: int, widths: list[int]) -> dict:
    started = time.perf_counter()
    model = lamina.train(config(folder, epochs, batch, widths), output=folder / "run", verbose=False, report=False)
    lamina_seconds = time.perf_counter() - started
    test = pd.read_csv(folder / "test.csv")
    started = time.perf_counter()
    raw = model.predict_raw(test)["mask"]
    images_per_second = len(test) / (time.perf_counter() - started)
    image, mask = model.preprocessor.inputs[0], model.preprocessor.outputs[0]
    ours = mask.metrics(test["mask"], raw)
    train = pd.read_csv(folder / "train.csv")
    started = time.perf_counter()
    forest = fit_forest(image.transform(train["image"]).numpy(), mask.transform(train["mask"]).numpy())
    forest_seconds = time.perf_counter() - started
    started = time.perf_counter()
    forest_out = forest_raw(forest, image.transform(test["image"]).numpy(), len(mask.state["classes"]))
    forest_ips = len(test) / (time.perf_counter() - started)
    theirs = mask.metrics(test["mask"], forest_out)
    keys = ("dice", "iou", "hausdorff95", "lesion_sensitivity", "lesion_fp_per_image", "abnormality_roc_auc")
    return {
        "train_rows": len(train), "test_rows": len(test), "epochs_run": model.info.get("epochs_run"),
        "lamina": {**{k: ours[k] for k in keys}, "train_seconds": lamina_seconds, "images_per_second": images_per_second},
        "forest": {**{k: theirs[k] for k in keys}, "train_seconds": forest_seconds, "images_per_second": forest_ips},
        "dice_ratio": ours["dice"] / theirs["dice"] if theirs["dice"] else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", nargs="+", default=["phantoms", "nuclei"])
    parser.add_argument("--wheel", type=Path, help="the stardist wheel (pip download --no-deps stardist)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--cases", type=int, default=200, help="phantoms to train and validate on (half as many unseen)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    with tempfile.TemporaryDirectory(prefix="lamina-seg-") as scratch:
        for name in args.sets:
            folder = Path(scratch) / name
            folder.mkdir()
            if name == "phantoms":
                phantoms(folder, args.cases)
            else:
                if args.wheel is None:
                    parser.error("--wheel is needed for the nuclei set")
                nuclei(folder, args.wheel)
            results[name] = compare(folder, args.epochs, args.batch, args.widths)
            print(name, json.dumps(results[name], indent=1), flush=True)
    print("set       Lamina Dice  forest Dice  ratio  Lamina train s  forest train s  Lamina img/s")
    for name, r in results.items():
        print(f"{name:9} {r['lamina']['dice']:11.3f}  {r['forest']['dice']:11.3f}  {r['dice_ratio']:5.2f}  "
              f"{r['lamina']['train_seconds']:14.0f}  {r['forest']['train_seconds']:14.0f}  "
              f"{r['lamina']['images_per_second']:12.0f}")


if __name__ == "__main__":
    main()
