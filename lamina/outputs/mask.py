"""Mask targets (segmentation): a column of mask image paths whose pixel values are class ids, the same size and
framing as the image input's pictures; a U-Net decoder on the image encoder's feature maps predicts them.

The fitted state is the classes (the distinct pixel values of the training masks, the lowest one the background)
and the mask size, chosen as the image type chooses its own (the training masks' median size, at most 128 px a
side) so the two agree by default; give both the same ``size`` otherwise. Raw outputs are class logits
``(n, classes, H, W)``. ``lamina predict`` into a folder predicts a picture larger than the training size (at the
training's pixel scale) by blended overlapping tiles of that size (``lamina.outputs.tiles``; option ``tiles``).

>>> # config.yaml: outputs: [{name: lesion_mask, type: mask}]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageOps
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from lamina.errors import LaminaError, row_name
from lamina.outputs.base import OutputOptions, OutputType
from lamina.outputs.mask_decoder import DiceCELoss, MaskHead
from lamina.outputs.mask_metrics import mask_metrics

MAX_AUTO_SIZE = 128  # as the image type's: the default sizes of image and mask agree
MAX_CLASSES = 64


class MaskOptions(OutputOptions):
    size: int | tuple[int, int] | None = Field(None, description="pixels (side, or [height, width]); must equal the "
                                                                 "image input's; default: as the image type picks")
    resize: Literal["pad", "crop"] = Field("pad", description="as the image input's resize")
    class_names: list[str] | None = Field(None, description="a name per mask value, lowest value first; default: "
                                                            "'background', then the values")
    tiles: bool = Field(True, description="lamina predict: a picture larger than the training size (at its pixel "
                                          "scale) is predicted by overlapping tiles of that size, blended, at "
                                          "its own size (nnU-Net's sliding window); false: resized to it")


def _read(path: str) -> np.ndarray:
    with Image.open(path) as image:
        image.load()
        if image.mode in ("RGB", "RGBA", "P", "LA"):
            image = image.convert("L")
        return np.asarray(image)


def read_mask(path: str, size: tuple[int, int] | None, resize: str) -> np.ndarray:
    """One mask file's values, resized (nearest) to ``size`` (height, width) as the image type resizes."""
    array = _read(path)
    if size is None or array.shape == size:
        return array
    image = Image.fromarray(array.astype(np.int32) if array.dtype != np.uint8 else array)
    target = (size[1], size[0])
    fitted = (ImageOps.fit(image, target, method=Image.Resampling.NEAREST) if resize == "crop" else
              ImageOps.pad(image, target, method=Image.Resampling.NEAREST, color=0))
    return np.asarray(fitted)


class MaskOutput(OutputType):
    kind = "mask"
    Options = MaskOptions
    spatial = True
    holds_paths = True  # relative mask paths are resolved against the table's folder, as image paths are
    primary_metric = "dice"
    higher_is_better = True
    # What early stopping may watch; the metrics also hold Dice and IoU per class, Hausdorff-95 (px) and false
    # positive lesions per image, which are better lower.
    metric_names = ("dice", "iou", "lesion_sensitivity", "abnormality_roc_auc")
    lower_is_better = frozenset({"hausdorff95", "lesion_fp_per_image"})

    # --- fitting and transforming -----------------------------------------------------------------------------

    def _masks(self, values: pd.Series, size: tuple[int, int] | None) -> list[np.ndarray]:
        out = []
        for row, value in enumerate(values):
            path = "" if pd.isna(value) else os.fspath(value)
            try:
                out.append(read_mask(path, size, self.options.resize))
            except (OSError, ValueError, Image.DecompressionBombError) as error:
                why = "no such file" if isinstance(error, FileNotFoundError) else " ".join(str(error).split())[:100]
                raise LaminaError(f"target '{self.name}' row {row_name(values.index[row])}: {path or '(missing)'}: "
                                  f"{why}; give a readable mask image (PNG, TIFF) per row") from None
        return out

    def fit(self, values: pd.Series) -> None:
        masks = self._masks(values, None)
        found = sorted(set().union(*(np.unique(m).tolist() for m in masks)))
        if len(found) > MAX_CLASSES:
            raise LaminaError(f"target '{self.name}': the masks have {len(found)} distinct values; a mask's pixel "
                              f"values are class ids (at most {MAX_CLASSES}); is this column an image, not a mask?")
        if found[0] != 0:
            found = [0, *found]  # the background exists even when every training mask is full of lesion
        if len(found) < 2:
            found = [0, 1 if masks[0].dtype != np.uint8 or max(found) < 255 else 255]
        names = self.options.class_names or ["background", *(str(v) for v in found[1:])]
        if len(names) != len(found):
            raise LaminaError(f"target '{self.name}': class_names has {len(names)} names for {len(found)} mask values "
                              f"({found}); give one name per value, lowest first")
        size = self.options.size
        if size is None:
            height, width = (int(np.median([m.shape[k] for m in masks])) for k in (0, 1))
            shrink = max(height, width) / MAX_AUTO_SIZE
            if shrink > 1:
                height, width = max(1, round(height / shrink)), max(1, round(width / shrink))
        else:
            height, width = (size, size) if isinstance(size, int) else size
        median = [float(np.median([m.shape[k] for m in masks])) for k in (0, 1)]
        # The pixel scale training saw (pad's arithmetic): a larger picture is tiled at that scale, not its own.
        scale = min(height / max(median[0], 1.0), width / max(median[1], 1.0))
        self.state = {"values": [int(v) for v in found], "classes": names, "height": height, "width": width,
                      "scale": scale}

    @property
    def size(self) -> tuple[int, int]:
        return int(self.state["height"]), int(self.state["width"])

    def transform(self, values: pd.Series) -> torch.Tensor:
        """Class indices ``(n, H, W)`` uint8."""
        lookup = {v: i for i, v in enumerate(self.state["values"])}
        out = np.zeros((len(values), *self.size), np.uint8)
        for row, mask in enumerate(self._masks(values, self.size)):
            unseen = np.setdiff1d(np.unique(mask), self.state["values"])
            if unseen.size:
                raise LaminaError(f"target '{self.name}' row {row_name(values.index[row])}: {values.iloc[row]}: mask "
                                  f"value {int(unseen[0])} never occurs in the training masks "
                                  f"({self.state['values']}); fix the mask or add such masks to training")
            out[row] = np.vectorize(lookup.get, otypes=[np.uint8])(mask) if mask.size else 0
        return torch.from_numpy(out)

    # --- the network: decoder head, loss, masks moving with the pixels ----------------------------------------

    def head(self, in_dim: int, shapes: list[tuple[int, int]] | None = None) -> nn.Module:
        return MaskHead(in_dim, shapes or [], len(self.state["classes"]))

    def loss(self) -> nn.Module:
        return DiceCELoss(len(self.state["classes"]))

    def follow(self, target: torch.Tensor, theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        grid = F.affine_grid(theta.to(target.device), [target.shape[0], 1, *size], align_corners=False)
        moved = F.grid_sample(target[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
        return moved[:, 0].to(target.dtype)  # outside the picture is background (class 0), as black is for pixels

    # --- decoding and metrics -----------------------------------------------------------------------------------

    def labels(self, raw: np.ndarray) -> np.ndarray:
        """Predicted class indices ``(n, H, W)`` at the mask size."""
        raw = np.asarray(raw)
        if raw.shape[-2:] != self.size:
            raw = F.interpolate(torch.from_numpy(raw).float(), size=self.size, mode="bilinear").numpy()
        return raw.argmax(1).astype(np.uint8)

    def decode(self, raw: np.ndarray) -> pd.DataFrame:
        from lamina.outputs.mask_files import areas

        return areas(self, raw)

    def metrics(self, values: pd.Series, raw: np.ndarray) -> dict[str, Any]:
        truth = self.transform(values).numpy()
        raw = np.asarray(raw)
        if raw.shape[-2:] != truth.shape[-2:]:
            raw = F.interpolate(torch.from_numpy(raw).float(), size=truth.shape[-2:], mode="bilinear").numpy()
        return mask_metrics(raw, truth, list(self.state["classes"]))

    # --- faces ------------------------------------------------------------------------------------------------

    def explained_score(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.softmax(raw.float(), dim=1)[:, 1:].sum(1).mean(dim=(1, 2))  # the expected lesion fraction

    def explained_score_name(self) -> str:
        return f"{self.name}: fraction of the image predicted foreground"

    def classical_counterparts(self, inputs: list[Any], split: dict[str, pd.DataFrame]) -> list[dict[str, Any]] | None:
        from lamina.outputs.mask_forest import counterparts

        return counterparts(self, inputs, split)

    def report_section(self, inputs: list[Any], test: pd.DataFrame, raw: np.ndarray) -> str | None:
        from lamina.outputs.mask_files import overlays_section

        return overlays_section(self, inputs, test, raw)

    def serve_entry(self, record: dict[str, Any], raw: np.ndarray) -> dict[str, Any]:
        from lamina.outputs.mask_files import overlay_uri

        return {"prediction": record[self.name], "mask": overlay_uri(self.labels(raw[None])[0])}

    def tile_scale(self) -> float | None:
        return self.state.get("scale") if self.options.tiles else None  # None: saved before tiles existed

    def page_widget(self) -> dict[str, Any]:
        # The overlay box takes the mask's shape; the upload is fitted into it as the image type fitted it.
        return {"widget": "mask", "mask_size": list(self.size), "mask_resize": self.options.resize}

    def write_predictions(self, raw: np.ndarray, frame: pd.DataFrame, inputs: list[Any], folder: Path,
                          tiled: dict[int, np.ndarray] | None = None) -> pd.DataFrame | None:
        """A mask PNG per row in ``folder/<name>/`` (named after its image) and a row per predicted lesion."""
        from lamina.outputs.mask_files import write_masks

        source = next((t for t in inputs if t.spatial), None)
        sources = [str(v) for v in frame[source.name]] if source is not None else [f"row{i}" for i in frame.index]
        return write_masks(self, raw, Path(folder) / self.name, sources, tiled or {})
