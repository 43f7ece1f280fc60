"""Decoding image files (and DICOM) into fixed-size uint8 or uint16 arrays, in parallel, into a content-keyed
memory-mapped cache.

Kept apart from the type so worker processes import only Pillow and NumPy code, and so tests can count decodes.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from lamina.errors import LaminaError
from lamina.inputs.image_dicom import DicomError, decode_dicom, is_dicom

PARALLEL_FROM = 256  # fewer images decode faster in-process than a pool starts
CACHE_VERSION = 1  # bump when decoding changes, so old cache files are never read as new ones


@dataclass(frozen=True)
class Geometry:
    """What a decoded array depends on besides the file's bytes."""

    height: int
    width: int
    channels: int
    resize: str  # pad | crop
    bits: int = 8  # 8: uint8 pixels; 16: uint16, so a scan's 16-bit depth survives until normalisation
    window: str | tuple[float, float] | None = None  # DICOM only: a preset name or (centre, width)
    faces: str = "none"  # detect: the most confident face, aligned by its landmarks (image_faces_detect)

    @property
    def dtype(self) -> type:
        return np.uint16 if self.bits == 16 else np.uint8


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and float images scaled to 8 bits (Pillow's convert('L') would clip them instead)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64) / 257.0
        return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "L")
    if image.mode == "F":
        return Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), "L")
    return image


def _resized(image: Image.Image, geometry: Geometry) -> Image.Image:
    size = (geometry.width, geometry.height)
    if image.size == size:
        return image
    if geometry.resize == "crop":
        return ImageOps.fit(image, size, method=Image.Resampling.BILINEAR)
    return ImageOps.pad(image, size, method=Image.Resampling.BILINEAR, color=0)


def _quantised(planes: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Float planes ``(C, h, w)`` in [0, 1] resized (bilinear, in float) and rounded to the bit depth."""
    top = 2**geometry.bits - 1
    out = [np.asarray(_resized(Image.fromarray(plane.astype(np.float32), "F"), geometry)) for plane in planes]
    return np.round(np.clip(np.stack(out), 0, 1) * top).astype(geometry.dtype)


def _sixteen_bit(image: Image.Image, geometry: Geometry) -> np.ndarray:
    """A PNG/TIFF at 16 bits: 16-bit grey kept as it is, everything else scaled from 8 bits."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I") and geometry.channels == 1:
        return _quantised(np.asarray(image, dtype=np.float64)[None] / 65535.0, geometry)
    if image.mode == "F" and geometry.channels == 1:
        return _quantised(np.asarray(image, dtype=np.float64)[None] / 255.0, geometry)
    image = _to_8bit(image)
    image = image.convert("RGBA") if image.mode == "P" else image
    array = np.asarray(image.convert("L" if geometry.channels == 1 else "RGB"), dtype=np.float64) / 255.0
    return _quantised(array[None] if array.ndim == 2 else array.transpose(2, 0, 1), geometry)


class NoFace(ValueError):
    """``faces: detect`` found no face in a picture: a bad input, left out or reported as ``on_bad_input`` says."""


def _face(image: Image.Image, side: int) -> Image.Image:
    from lamina.inputs.image_faces_align import align
    from lamina.inputs.image_faces_detect import shared_detector

    found = shared_detector().detect(np.asarray(image))
    if not len(found):
        raise NoFace("no face found (faces: detect); crop the picture nearer the face, or leave it out")
    return align(image, found.landmarks[0], side)


def decode(path: str, geometry: Geometry) -> np.ndarray:
    """One image file as a (channels, height, width) array of the geometry's bit depth: first frame, EXIF-upright,
    converted, resized. DICOM goes through its rescale and window (``image_dicom``)."""
    if is_dicom(path):
        return _quantised(decode_dicom(path, geometry.window, geometry.channels), geometry)
    with Image.open(path) as opened:
        opened.seek(0)  # the first frame of a GIF or multi-page TIFF
        image = ImageOps.exif_transpose(opened)
        image.load()
        if geometry.bits == 16:
            return _sixteen_bit(image, geometry)
        image = _to_8bit(image)
        if image.mode == "P":  # palette images may carry transparency; go through RGBA so it is honoured
            image = image.convert("RGBA")
        if geometry.faces == "detect":
            image = _face(image.convert("RGB"), max(geometry.height, geometry.width))
        image = image.convert("L" if geometry.channels == 1 else "RGB")  # alpha is dropped, colour kept
        array = np.asarray(_resized(image, geometry), dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def describe_error(error: BaseException) -> str:
    if isinstance(error, (DicomError, NoFace)):
        return str(error)
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError):
        return "is a directory, not an image file"
    if isinstance(error, Image.UnidentifiedImageError):
        return "not an image Pillow can read (empty, or not PNG/JPEG/BMP/GIF/TIFF/WebP)"
    text = " ".join(str(error).split()) or type(error).__name__
    return f"cannot decode the image ({text[:120]}); the file may be truncated or damaged"


def _decode_rows(paths: list[str], start: int, target: str, shape: tuple[int, ...], geometry: Geometry
                 ) -> dict[int, str]:
    """Decode ``paths`` into rows ``start...`` of the memmap at ``target``; the rows that failed, with why."""
    out = np.memmap(target, dtype=geometry.dtype, mode="r+", shape=shape)
    failed: dict[int, str] = {}
    for offset, path in enumerate(paths):
        try:
            out[start + offset] = decode(path, geometry)
        except LaminaError:  # not the file's fault (MTCNN's weights missing): one line for the whole run
            raise
        except Exception as error:  # any failure of a user's file is reported per file, never a crash
            failed[start + offset] = describe_error(error)
    out.flush()
    del out
    return failed


def decode_all(paths: list[str], geometry: Geometry, target: str, workers: int) -> dict[int, str]:
    """Decode every path into a new (n, C, H, W) uint8 memmap file at ``target``; failed rows stay zero."""
    shape = (len(paths), geometry.channels, geometry.height, geometry.width)
    np.memmap(target, dtype=geometry.dtype, mode="w+", shape=shape).flush()
    # Face detection runs torch, which a forked worker must not start after its parent has (OpenMP can hang).
    if len(paths) < PARALLEL_FROM or workers <= 1 or geometry.faces != "none":
        return _decode_rows(paths, 0, target, shape, geometry)
    chunk = max(64, len(paths) // (workers * 4))
    # fork: workers start in milliseconds and need nothing re-imported; they only run Pillow and NumPy.
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    failed: dict[int, str] = {}
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        jobs = [pool.submit(_decode_rows, paths[i:i + chunk], i, target, shape, geometry)
                for i in range(0, len(paths), chunk)]
        for job in jobs:
            failed.update(job.result())
    return failed


def content_key(paths: list[str], geometry: Geometry) -> str:
    """A key from every file's bytes and the geometry: the same images at the same size hit the same cache file."""
    fields = asdict(geometry)
    if fields["faces"] == "none":  # keys made before the option existed stay valid
        del fields["faces"]
    digest = hashlib.blake2b(json.dumps([CACHE_VERSION, fields]).encode(), digest_size=20)
    for path in paths:
        try:
            with open(path, "rb") as handle:
                digest.update(hashlib.blake2b(handle.read(), digest_size=16).digest())
        except OSError as error:  # a missing file is keyed by its name and error; decoding reports it
            digest.update(f"missing:{path}:{type(error).__name__}".encode())
    return digest.hexdigest()


def load_images(paths: list[str], geometry: Geometry, cache_dir: Path | None, workers: int
                ) -> tuple[np.ndarray, dict[int, str]]:
    """The decoded images (n, C, H, W) uint8 and the failed rows.

    With a cache folder the array is a copy-on-write memmap of ``<key>.u8`` there (decoded only when that file is
    missing), so it never has to fit in memory; without one the images are decoded into memory.
    """
    shape = (len(paths), geometry.channels, geometry.height, geometry.width)
    if not paths:
        return np.zeros(shape, geometry.dtype), {}
    if cache_dir is None:
        with tempfile.TemporaryDirectory(prefix="lamina-images-") as scratch:
            failed = decode_all(paths, geometry, os.path.join(scratch, "images.u8"), workers)
            array = np.array(np.memmap(os.path.join(scratch, "images.u8"), dtype=geometry.dtype, mode="r", shape=shape))
        return array, failed
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = content_key(paths, geometry)
    data, meta = cache_dir / f"{key}.u8", cache_dir / f"{key}.json"
    if not (data.exists() and meta.exists()):
        partial = cache_dir / f"{key}.{os.getpid()}.partial"
        failed = decode_all(paths, geometry, str(partial), workers)
        meta.write_text(json.dumps({"shape": shape, "failed": {str(k): v for k, v in failed.items()}}), "utf-8")
        os.replace(partial, data)  # the data file appears only when whole, so a crash never leaves half a cache
    recorded = json.loads(meta.read_text("utf-8"))
    failed = {int(k): v for k, v in recorded["failed"].items()}
    # mode "c": torch.from_numpy needs a writable array; copy-on-write never touches the file.
    return np.memmap(data, dtype=geometry.dtype, mode="c", shape=shape), failed
