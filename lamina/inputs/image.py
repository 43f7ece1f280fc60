"""Images: a column of image file paths (PNG, JPEG, TIFF, DICOM...), decoded to a fixed size, cached as uint8 (or
uint16 with ``bits: 16``), encoded by a CNN.

The fitted state is the channel count, the target size and the per-channel mean and std of the training images.
``transform`` returns uint8 (n, C, H, W); with a cache folder it is a memory map of a file keyed by the images'
content, so a second transform of the same files never decodes again and the training loop reads only the rows
of each batch.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from PIL import Image
from pydantic import Field, field_validator, model_validator
from torch import nn

from lamina.errors import LaminaError
from lamina.inputs.base import Options
from lamina.inputs.files import FileInput
from lamina.inputs.image_classical import ImageFeaturizer
from lamina.inputs.image_decode import Geometry, load_images
from lamina.inputs.image_dicom import WINDOWS, is_dicom
from lamina.inputs.image_dicom import header as dicom_header
from lamina.inputs.image_encoder import Augment, ImageEncoder, cnn, resnet, warp

log = logging.getLogger("lamina")

GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
MAX_AUTO_SIZE = 128  # the automatic size never exceeds this many pixels a side: CPU training stays practical
FACE_SIDE = 112  # the default size of an aligned face (ArcFace's template)
RESNET_ABOVE = 32  # the automatic encoder is a ResNet for images larger than this, a plain CNN up to it
_ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
WindowName = Literal[tuple(WINDOWS)]  # type: ignore[valid-type]


class ImageOptions(Options):
    size: int | tuple[int, int] | None = Field(None, description="pixels (side, or [height, width]); "
                                                                 "default: the training images' median size")
    channels: Literal["auto", 1, 3] = Field("auto", description="auto: 1 if every training image is grayscale")
    resize: Literal["pad", "crop"] = Field("pad", description="keep the aspect ratio and pad, or centre-crop")
    augment: bool = Field(True, description="random augmentation in training only (below)")
    shift: float = Field(0.1, ge=0, le=0.5, description="largest shift, as a fraction of the size")
    rotation: float = Field(10.0, ge=0, le=180, description="largest rotation in degrees")
    scale: float = Field(0.1, ge=0, lt=1, description="largest zoom in or out, as a fraction")
    flip: bool = Field(False, description="random horizontal flips; wrong for digits and text")
    crop: float = Field(0.0, ge=0, lt=1, description="random crops cutting up to this fraction of each side, "
                                                     "stretched back to the size (boxes and masks follow)")
    brightness: float = Field(0.1, ge=0, le=1)
    contrast: float = Field(0.1, ge=0, le=1)
    encoder: Literal["auto", "cnn", "resnet"] = Field("auto", description=f"auto: resnet above {RESNET_ABOVE} px")
    widths: list[int] = Field([32, 64, 128], min_length=1, description="channels per stage")
    depths: list[int] | None = Field(None, description="convolutions (cnn) or basic blocks (resnet) per stage; "
                                                       "default 1 each")
    kernel: int = Field(3, ge=1, le=11, description="cnn kernel size")
    pool: Literal["max", "avg"] = "max"
    batch_norm: bool = True
    dropout: float = Field(0.0, ge=0, lt=1)
    workers: int | None = Field(None, ge=0, description="decoding processes; default: the CPU count, at most 8")
    on_bad_input: Literal["error", "skip"] = Field("error", description="skip: leave out unreadable images, "
                                                                        "with a warning naming them")
    faces: Literal["none", "detect"] = Field(
        "none", description="detect: find the most confident face in each picture (MTCNN) and align it by its five "
                            "landmarks before resizing, in training and prediction alike; a picture without a face "
                            "is a bad input (on_bad_input)")
    bits: Literal[8, 16] = Field(8, description="pixel depth kept until normalisation: 16 for scans (DICOM, 16-bit "
                                                "PNG/TIFF) whose window holds more than 256 grey levels")
    window: WindowName | tuple[float, float] | None = Field(
        None, description="DICOM only: [centre, width] in the modality's units (CT: Hounsfield) or a preset "
                          f"({', '.join(WINDOWS)}); default: the file's own window, else its full range")

    @field_validator("window")
    @classmethod
    def _positive_width(cls, window: str | tuple[float, float] | None) -> str | tuple[float, float] | None:
        if isinstance(window, tuple) and window[1] <= 0:
            raise ValueError("the window's width (its second number) must be positive")
        return window

    @model_validator(mode="after")
    def _faces_are_photographs(self) -> "ImageOptions":
        # MTCNN's nets were trained on 8-bit photographs; a 16-bit scan has no face to find.
        if self.faces == "detect" and self.bits == 16:
            raise ValueError("faces: detect reads 8-bit photographs; set bits: 8 (or faces: none for 16-bit scans)")
        return self


def _header(path: str) -> tuple[str, int, int] | None:
    """Mode, height and width (upright) from the file header without decoding pixels; None if unreadable."""
    if is_dicom(path):
        found = dicom_header(path)
        return None if found is None else ("L" if found[0] == 1 else "RGB", found[1], found[2])
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(274) in _ROTATED:
                width, height = height, width
            return image.mode, height, width
    except Exception:  # reported when the file is decoded
        return None


class ImageInput(FileInput):
    kind = "image"

    @classmethod
    def tune_space(cls) -> dict[str, dict[str, Any]]:
        # Augmentation strength: how far a training image may move, turn and zoom.
        return {"shift": {"low": 0.0, "high": 0.2}, "rotation": {"low": 0.0, "high": 20.0},
                "scale": {"low": 0.0, "high": 0.2}, "dropout": {"low": 0.0, "high": 0.4}}
    Options = ImageOptions
    noun = "image"

    # --- fitting and transforming -----------------------------------------------------------------------------

    def _geometry(self) -> Geometry:
        s, o = self.state, self.options
        return Geometry(s["height"], s["width"], s["channels"], o.resize, s.get("bits", 8), o.window,
                        s.get("faces", "none"))

    def _load(self, values: pd.Series) -> tuple[np.ndarray, dict[int, str]]:
        paths = self._paths(values)
        array, failed = load_images(paths, self._geometry(), self.cache_dir, self._workers())
        for row, path in enumerate(paths):  # a missing value has no file to name
            if not path:
                failed[row] = "no image path (missing value)"
        return array, failed

    def fit(self, values: pd.Series) -> None:
        paths = self._paths(values)
        headers = [_header(p) for p in paths if p]
        readable = [h for h in headers if h is not None]
        if not readable:
            raise LaminaError(f"column '{self.name}': no readable image in the training split; check the paths")
        channels = self.options.channels
        if channels == "auto":
            channels = 1 if all(mode in GRAY_MODES for mode, _, _ in readable) else 3
        size = self.options.size
        if size is None and self.options.faces == "detect":
            size = FACE_SIDE
        if size is None:
            height = int(np.median([h for _, h, _ in readable]))
            width = int(np.median([w for _, _, w in readable]))
            shrink = max(height, width) / MAX_AUTO_SIZE
            if shrink > 1:
                height, width = max(1, round(height / shrink)), max(1, round(width / shrink))
        elif isinstance(size, int):
            height = width = size
        else:
            height, width = size
        self.state = {"channels": int(channels), "height": int(height), "width": int(width)}
        if self.options.bits != 8:  # absent means 8: models saved before the option read as they were
            self.state["bits"] = self.options.bits
        if self.options.faces != "none":  # in the state: a saved model aligns faces at prediction as in training
            self.state["faces"] = self.options.faces
        array, failed = self._load(values)
        if failed and self.options.on_bad_input == "error":
            self._raise_first(values, failed)
        good = np.setdiff1d(np.arange(len(paths)), list(failed))
        if good.size == 0:
            raise LaminaError(f"column '{self.name}': no readable image in the training split; check the files")
        # Per-channel statistics in chunks, so a memory-mapped image set never has to fit in memory.
        total = np.zeros(channels)
        squares = np.zeros(channels)
        for start in range(0, good.size, 1024):
            chunk = array[good[start:start + 1024]].astype(np.float64)
            total += chunk.sum(axis=(0, 2, 3))
            squares += np.square(chunk).sum(axis=(0, 2, 3))
        count = good.size * height * width
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0))
        self.state["mean"] = [float(m) for m in mean]
        self.state["std"] = [float(max(s, 1.0)) for s in std]  # a blank channel must not divide by ~0

    def failed(self, values: pd.Series) -> dict[int, str]:
        return self._load(values)[1]

    def transform(self, values: pd.Series) -> torch.Tensor:
        array, failed = self._load(values)
        if failed and self.options.on_bad_input == "error":
            self._raise_first(values, failed)
        return torch.from_numpy(array)  # with 'skip', rows not left out by usable() are black images

    # --- the encoder --------------------------------------------------------------------------------------------

    def _architecture(self) -> str:
        if self.options.encoder != "auto":
            return self.options.encoder
        return "resnet" if max(self.state["height"], self.state["width"]) > RESNET_ABOVE else "cnn"

    @property
    def width(self) -> int:
        return self.options.widths[-1]

    def encoder(self) -> nn.Module:
        return self._encoder(moves=True)

    # --- spatial outputs read the feature maps; training moves pixels and targets together ---------------------

    spatial = True

    def spatial_encoder(self) -> nn.Module:
        return self._encoder(moves=False)

    def map_shapes(self, encoder: nn.Module) -> list[tuple[int, int]]:
        return encoder.map_shapes(self.state["channels"], self.state["height"], self.state["width"])

    def page_widget(self) -> dict[str, Any]:
        # Scans come as DICOM, which browsers label application/dicom or nothing at all: the extension lets them in.
        return {"field": "file", "accept": "image/*,.dcm,.dicom,application/dicom"}

    def canvas(self) -> tuple[int, int, str]:
        return int(self.state["height"]), int(self.state["width"]), self.options.resize

    def _augment(self, moves: bool) -> Augment | None:
        o = self.options
        if not o.augment:
            return None
        if not moves:
            return Augment(0.0, 0.0, 0.0, False, o.brightness, o.contrast)
        return Augment(o.shift, o.rotation, o.scale, o.flip, o.brightness, o.contrast, o.crop)

    def draw_move(self, n: int) -> torch.Tensor | None:
        augment = self._augment(moves=True)
        if augment is None or not augment.moves:
            return None
        return augment.theta(torch.rand(n, 5 if not augment.crop else augment.draws) * 2 - 1)  # the checkpointed RNG

    @property
    def full_scale(self) -> float:
        """The pixel value of white: 255 at 8 bits, 65535 at 16."""
        return float(2 ** self.state.get("bits", 8) - 1)

    def move(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return warp(x.float(), theta)  # still in pixel units (0 to full_scale), as the encoder reads them

    def at_own_size(self, values: pd.Series, scale: float = 1.0, beyond: tuple[int, int] = (0, 0)
                    ) -> list[torch.Tensor | None]:
        out: list[torch.Tensor | None] = []
        for path in self._paths(values):
            found = _header(path) if path else None
            size = {} if found is None else {"height": max(1, round(found[1] * scale)),
                                             "width": max(1, round(found[2] * scale))}
            if not size or (size["height"] <= beyond[0] and size["width"] <= beyond[1]):
                out.append(None)  # unreadable, or no larger than ``beyond``: not decoded
                continue
            array, failed = load_images([path], replace(self._geometry(), **size), None, 1)
            out.append(None if failed else torch.from_numpy(array[0]))
        return out

    def _encoder(self, moves: bool) -> nn.Module:
        o, s = self.options, self.state
        depths = o.depths or [1] * len(o.widths)
        if len(depths) != len(o.widths):
            raise LaminaError(f"column '{self.name}': depths has {len(depths)} stages but widths has "
                              f"{len(o.widths)}; give one depth per width")
        size = min(s["height"], s["width"])
        if self._architecture() == "resnet":
            body = resnet(s["channels"], size, o.widths, depths, o.batch_norm, o.dropout)
        else:
            body = cnn(s["channels"], size, o.widths, depths, o.kernel, o.pool, o.batch_norm, o.dropout)
        return ImageEncoder(body, self.width, s["mean"], s["std"], self._augment(moves), self.full_scale)

    # --- faces: HOG + SVM for compare, pixels for explain ---------------------------------------------------------

    explain_rows = 64  # a CNN pass per integration step is dearer than a table's
    baseline_note = "images black"

    def classical(self) -> ImageFeaturizer:
        return ImageFeaturizer(self)

    def attribution(self, encoder: nn.Module) -> str:
        return "pixels"
