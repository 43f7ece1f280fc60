"""DICOM files as images: pydicom's pixels through the modality rescale, a window, and MONOCHROME1 inversion.

A scan's stored values are not display values: CT stores Hounsfield units as ``stored · slope + intercept``, and
which range of them matters is a choice (a window: centre and width). The result is a float image in [0, 1] that
the decoder resizes and quantises to the image type's bit depth, so 16-bit precision survives until normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Common radiology windows (centre, width) in Hounsfield units.
WINDOWS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (40.0, 40.0),
    "soft_tissue": (50.0, 400.0),
    "mediastinum": (50.0, 350.0),
    "liver": (30.0, 150.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
}
Window = str | Sequence[float] | None


class DicomError(ValueError):
    """A DICOM file Lamina cannot turn into pixels; the message says why and what to do."""


def is_dicom(path: str) -> bool:
    """A DICOM file by its name, or by the 'DICM' marker after the 128-byte preamble."""
    if path.lower().endswith((".dcm", ".dicom")):
        return True
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _read(path: str, pixels: bool):  # -> pydicom.Dataset
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ModuleNotFoundError:
        raise DicomError("reading DICOM needs pydicom: pip install pydicom") from None
    try:
        return pydicom.dcmread(path, stop_before_pixels=not pixels, force=True)  # force: files without a preamble
    except InvalidDicomError as error:
        raise DicomError(f"not a readable DICOM file ({' '.join(str(error).split())[:100]})") from None


def header(path: str) -> tuple[int, int, int] | None:
    """Samples per pixel, rows and columns without reading the pixels; None when the file has no image."""
    try:
        ds = _read(path, pixels=False)
        return int(ds.get("SamplesPerPixel", 1)), int(ds.Rows), int(ds.Columns)
    except Exception:  # reported when the file is decoded
        return None


def _window_of(ds, values: np.ndarray, window: Window) -> tuple[float, float]:
    if isinstance(window, str):
        return WINDOWS[window]
    if window is not None:
        return float(window[0]), float(window[1])
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:  # the file's own (first) VOI window
        first = (lambda v: float(v[0]) if hasattr(v, "__len__") and not isinstance(v, str) else float(v))
        if first(width) > 0:
            return first(center), first(width)
    low, high = float(values.min()), float(values.max())
    return (low + high) / 2, max(high - low, 1e-6)


def _guess_syntax(ds) -> None:
    """A file without a meta header (read with force) has the transfer syntax it was read with: name it."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                              ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def _pixels(ds, path: str) -> np.ndarray:
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise DicomError("DICOM file without pixel data (a report or other non-image object, or truncated); "
                         "leave it out of the image column")
    _guess_syntax(ds)
    try:
        array = ds.pixel_array
    except Exception as error:  # pydicom: no decoder for this transfer syntax, or damaged pixel data
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", str(syntax))
        text = " ".join(str(error).split())
        if "decompress" in text or "plugin" in text:  # pydicom has no decoder for this compression here
            raise DicomError(f"no decoder here for its transfer syntax ({name}); convert it to an uncompressed "
                             "DICOM or PNG, or install the decoder pydicom asks for (pylibjpeg, gdcm)") from None
        raise DicomError(f"cannot decode its pixel data ({name}: {text[:90]}); the file may be damaged") from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        array = array[0]  # the first frame, as for a multi-page TIFF
    return array


def decode_dicom(path: str, window: Window, channels: int) -> np.ndarray:
    """``(channels, H, W)`` float32 in [0, 1]: modality rescale, window, MONOCHROME1 inverted; colour as RGB."""
    ds = _read(path, pixels=True)
    array = _pixels(ds, path)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if array.ndim == 3:  # colour (RGB, or YBR which pydicom already turned into RGB): 8 or more bits per sample
        top = float(2 ** int(ds.get("BitsStored", 8)) - 1)
        rgb = np.clip(array.astype(np.float32) / top, 0, 1).transpose(2, 0, 1)
        return rgb.mean(0, keepdims=True) if channels == 1 else rgb
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])  # the LUT's entries are 8 or 16 bits
        rgb = apply_color_lut(array, ds).astype(np.float32) / float(2**bits - 1)
        rgb = rgb.transpose(2, 0, 1)
        return rgb.mean(0, keepdims=True) if channels == 1 else rgb
    from pydicom.pixels import apply_modality_lut

    values = np.asarray(apply_modality_lut(array, ds), dtype=np.float64)  # slope and intercept (or a LUT)
    center, width = _window_of(ds, values, window)
    gray = np.clip((values - (center - width / 2)) / width, 0, 1).astype(np.float32)
    if photometric == "MONOCHROME1":  # 0 is white: invert so that bright means dense, as in MONOCHROME2
        gray = 1 - gray
    return np.repeat(gray[None], channels, axis=0)
