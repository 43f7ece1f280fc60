"""What the mask output gives back: areas per image (``decode``), a mask PNG per image and a row per lesion
(``lamina predict`` into a folder), and the report's overlays of predicted and true masks on the worst and best
test images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageOps
from scipy import ndimage
from scipy.special import softmax

from lamina.outputs.mask_metrics import dice_iou


def areas(output: Any, raw: np.ndarray) -> pd.DataFrame:
    """Per image: foreground pixels (at the mask size), the number of lesions, each class's pixels, and the
    abnormality score (the most confident foreground pixel's probability)."""
    labels = output.labels(raw)
    classes = output.state["classes"]
    flat = labels.reshape(len(labels), -1)
    out: dict[str, Any] = {output.name: (flat > 0).sum(1),
                           f"{output.name}_lesions": [ndimage.label(m > 0)[1] for m in labels]}
    if len(classes) > 2:
        out.update({f"{output.name}_area_{c}": (flat == k).sum(1) for k, c in enumerate(classes) if k})
    background = softmax(np.asarray(raw, dtype=np.float64), axis=1)[:, 0].reshape(len(labels), -1)
    out[f"{output.name}_abnormal_score"] = 1 - background.min(1)
    return pd.DataFrame(out)


def _own_size(path: str) -> tuple[int, int] | None:
    """A picture's own (width, height) from its header; None when unreadable."""
    try:
        from lamina.inputs.image_dicom import header, is_dicom

        if is_dicom(path):
            found = header(path)
            return None if found is None else (found[2], found[1])
        with Image.open(path) as image:
            return ImageOps.exif_transpose(image).size
    except Exception:  # the mask is then written at the fitted size
        return None


def _original_frame(path: str, size: tuple[int, int], resize: str) -> tuple[tuple[int, int, int, int], tuple[int, int]] | None:
    """Where a padded image sits in the fitted size (box) and its own size, to put a mask back at the original
    resolution; None when that cannot be undone (cropped, or an unreadable header)."""
    original = _own_size(path) if resize == "pad" else None
    if original is None:
        return None
    height, width = size
    inner = ImageOps.contain(Image.new("L", original), (width, height)).size  # Pillow's own pad arithmetic
    left, top = (width - inner[0]) // 2, (height - inner[1]) // 2
    return (left, top, left + inner[0], top + inner[1]), original


def write_masks(output: Any, raw: np.ndarray, folder: Path, sources: list[str],
                tiled: dict[int, np.ndarray]) -> pd.DataFrame:
    """A mask PNG per row (the class values, at the image's own size where the padding can be undone, or as the
    sliding window stitched it for ``tiled`` rows) and a row per lesion: its class, area in pixels of the written
    mask, and centroid."""
    folder.mkdir(parents=True, exist_ok=True)
    values = np.asarray(output.state["values"])
    rows: list[dict[str, Any]] = []
    for index, (labels, source) in enumerate(zip(output.labels(raw), sources)):
        if index in tiled:
            labels = np.asarray(tiled[index]).argmax(0)
        image = Image.fromarray(values[labels].astype(np.uint8 if values.max() < 256 else np.int32))
        framed = None if index in tiled else _original_frame(source, output.size, output.options.resize)
        if index in tiled:  # stitched at the training's pixel scale: back to the picture's own size
            original = _own_size(source) or image.size
            image = image if image.size == original else image.resize(original, Image.Resampling.NEAREST)
        elif framed is not None:
            box, original = framed
            image = image.crop(box).resize(original, Image.Resampling.NEAREST)
        name = f"{index:05d}_{Path(source).stem or 'image'}.png"
        image.save(folder / name)
        written = np.asarray(image)
        for k, value in enumerate(values[1:], start=1):
            regions, count = ndimage.label(written == value)
            for region in range(1, count + 1):
                ys, xs = np.nonzero(regions == region)
                rows.append({"image": source, "mask": name, "class": output.state["classes"][k], "lesion": region,
                             "area_px": int(len(xs)), "centroid_x": float(xs.mean()), "centroid_y": float(ys.mean())})
    return pd.DataFrame(rows, columns=["image", "mask", "class", "lesion", "area_px", "centroid_x", "centroid_y"])


def overlay_uri(labels: np.ndarray) -> str:
    """A predicted mask as a PNG data URI to lay over its image: the foreground red and half transparent."""
    import base64
    import io

    rgba = np.zeros((*labels.shape, 4), np.uint8)
    rgba[labels > 0] = (230, 30, 30, 120)
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def overlays_section(output: Any, inputs: list[Any], test: pd.DataFrame, raw: np.ndarray, shown: int = 4) -> str | None:
    """The ``shown`` worst and best test images by Dice (foreground), the truth outlined green, the prediction red."""
    from lamina import plots
    from lamina.pages import heading, img, paragraph

    source = next((t for t in inputs if t.spatial), None)
    if source is None or len(test) == 0:
        return None
    truth, predicted = output.transform(test[output.name]).numpy(), output.labels(raw)
    scores = [dice_iou(p > 0, t > 0) for p, t in zip(predicted, truth)]
    dice = np.array([1.0 if s is None else s[0] for s in scores])
    order = np.argsort(dice, kind="stable")
    picked = list(dict.fromkeys([*order[:shown], *order[::-1][:shown]]))
    pictures = source.transform(test[source.name].iloc[picked]).numpy()
    gray = [plots.for_display(p.mean(0, keepdims=True).astype(p.dtype)) for p in pictures]  # 8 or 16 bits
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, len(picked), figsize=(2.4 * len(picked), 2.7), squeeze=False)
    for ax, row, picture in zip(axes[0], picked, gray):
        ax.imshow(picture, cmap="gray", interpolation="nearest", vmin=0, vmax=1)
        for mask, colour in ((truth[row] > 0, "lime"), (predicted[row] > 0, "red")):
            if mask.shape != picture.shape:
                mask = np.asarray(Image.fromarray(mask.astype(np.uint8)).resize(picture.shape[::-1]))
            if mask.any():
                ax.contour(mask.astype(float), levels=[0.5], colors=colour, linewidths=1.0)
        ax.set_title(f"row {test.index[row]}: Dice {dice[row]:.2f}", fontsize=8)
        ax.axis("off")
    note = paragraph(f"Test images by Dice of the foreground: the {shown} worst, then the {shown} best. Green: the "
                     f"true mask; red: the predicted one. Mean Dice {dice.mean():.3f} over {len(dice)} images.")
    return heading(output.name) + note + img(plots.png(fig), f"{output.name} overlays")
