"""Write CT-like scans with lesions as DICOM, and their exact masks as PNG, so the demo goes DICOM → pydicom →
rescale and window → U-Net → masks.

Each scan is a randomised Shepp–Logan-style phantom: a body ellipse of soft tissue, two lungs, a spine and organs
of random densities (Hounsfield units), with 0-3 lesions of random size and contrast inserted (a quarter of the
scans are healthy). The phantom's attenuation is projected with scikit-image's ``radon`` over a limited number of
angles, Poisson-like noise is added to the sinogram, and ``iradon`` (filtered back-projection) reconstructs it, so
the scans carry real reconstruction artefacts (streaks, noise, blur) while the masks stay exact.

- ``scans/images/case_<n>.dcm``: CT slices (uint16 stored values, rescale intercept −1024, a soft-tissue window);
- ``scans/masks/case_<n>.png``: the lesion mask, pixel value 1 (the class id) inside a lesion, 0 elsewhere;
- ``scans/scans.csv``: columns image and lesion_mask (paths relative to the CSV).

Run: ``python examples/scans/make_data.py`` (writes beside this file; ``--small`` for a tiny set, ``--out`` for
another folder, ``--seed`` for other phantoms; nothing is downloaded).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

HERE = Path(__file__).resolve().parent
MU_WATER = 0.02  # attenuation of water per pixel (arbitrary units): HU = 1000 (mu / mu_water - 1)


def _ellipse(shape: tuple[int, int], cy: float, cx: float, ry: float, rx: float, angle: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    y, x = yy - cy, xx - cx
    cos, sin = np.cos(angle), np.sin(angle)
    return ((x * cos + y * sin) / rx) ** 2 + ((-x * sin + y * cos) / ry) ** 2 <= 1


def phantom(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hounsfield units ``(size, size)`` and the lesion mask (bool) of one random phantom."""
    shape, c = (size, size), size / 2
    hu = np.full(shape, -1000.0)  # air
    body = _ellipse(shape, c, c, size * rng.uniform(0.36, 0.44), size * rng.uniform(0.40, 0.47), rng.uniform(-0.2, 0.2))
    hu[body] = rng.uniform(20, 50)  # soft tissue
    for side in (-1, 1):  # lungs
        lung = _ellipse(shape, c - size * 0.04, c + side * size * 0.18, size * rng.uniform(0.17, 0.22),
                        size * rng.uniform(0.09, 0.12), side * rng.uniform(0.0, 0.3)) & body
        hu[lung] = rng.uniform(-850, -750)
    spine = _ellipse(shape, c + size * 0.28, c, size * 0.05, size * 0.05, 0.0) & body
    hu[spine] = rng.uniform(600, 900)
    for _ in range(rng.integers(1, 3)):  # organs of random density
        organ = _ellipse(shape, c + size * rng.uniform(0.05, 0.2), c + size * rng.uniform(-0.15, 0.15),
                         size * rng.uniform(0.05, 0.1), size * rng.uniform(0.06, 0.12), rng.uniform(0, np.pi))
        hu[organ & body & (hu > -500) & (hu < 500)] = rng.uniform(40, 90)
    mask = np.zeros(shape, bool)
    if rng.random() < 0.75:
        soft = body & (hu > -500) & (hu < 500)
        for _ in range(rng.integers(1, 4)):
            candidates = np.argwhere(soft & ~mask)
            cy, cx = candidates[rng.integers(len(candidates))]
            radius = size * rng.uniform(0.03, 0.08)
            lesion = _ellipse(shape, cy, cx, radius * rng.uniform(0.7, 1.3), radius, rng.uniform(0, np.pi)) & soft
            contrast = rng.choice([-1, 1]) * rng.uniform(40, 120)  # hypo- or hyper-dense
            hu[lesion] = np.clip(hu[lesion] + contrast, -200, 300)
            mask |= lesion
    return hu, mask


def ct_reconstruction(hu: np.ndarray, rng: np.random.Generator, angles: int, photons: float) -> np.ndarray:
    """Filtered back-projection of a noisy sinogram of ``hu``: a CT-like slice in Hounsfield units."""
    from skimage.transform import iradon, radon

    mu = np.clip(MU_WATER * (1 + hu / 1000), 0, None)
    theta = np.linspace(0.0, 180.0, angles, endpoint=False)
    sinogram = radon(mu, theta=theta, circle=False)
    counts = rng.poisson(photons * np.exp(-sinogram)).clip(1, None)  # transmitted photons, Beer–Lambert
    noisy = -np.log(counts / photons)
    mu_back = iradon(noisy, theta=theta, circle=False, filter_name="ramp", output_size=hu.shape[0])
    return 1000 * (mu_back / MU_WATER - 1)


def write_dicom(path: Path, hu: np.ndarray, index: int) -> None:
    """One CT slice as DICOM: stored = HU + 1024 (uint16), rescale intercept −1024, a soft-tissue window."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.InstanceNumber = "CT", f"PHANTOM{index:05d}", index
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.PixelData = np.clip(np.round(hu + 1024), 0, 4095).astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def make(out: Path, cases: int, size: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rows = []
    for n in range(cases):
        hu, mask = phantom(size, rng)
        scan = ct_reconstruction(hu, rng, angles=int(rng.integers(size // 2, size)), photons=rng.uniform(2e4, 1e5))
        write_dicom(out / "images" / f"case_{n:04d}.dcm", scan, n)
        Image.fromarray(mask.astype(np.uint8), "L").save(out / "masks" / f"case_{n:04d}.png")
        rows.append({"image": f"images/case_{n:04d}.dcm", "lesion_mask": f"masks/case_{n:04d}.png"})
    table = pd.DataFrame(rows)
    table.to_csv(out / "scans.csv", index=False)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "scans", help="folder for images/ and masks/")
    parser.add_argument("--cases", type=int, default=None, help="scans to write (default 400, --small 24)")
    parser.add_argument("--size", type=int, default=None, help="pixels a side (default 96, --small 32)")
    parser.add_argument("--small", action="store_true", help="a tiny set for tests")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cases = args.cases or (24 if args.small else 400)
    size = args.size or (32 if args.small else 96)
    make(args.out, cases, size, args.seed)
    print(f"wrote {cases} scans of {size}×{size} px and their masks into {args.out}")


if __name__ == "__main__":
    main()
