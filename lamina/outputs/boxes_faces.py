"""The boxes output's faces: predictions placed back in each image file's pixels (``lamina predict``, serve), and
its report section (test pictures with true and predicted boxes; precision-recall per class at IoU 0.5)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lamina import plots
from lamina.outputs.boxes_metrics import Detections, pr_curve
from lamina.outputs.boxes_values import from_canvas
from lamina.pages import heading, img, paragraph

EXAMPLES = 8  # test pictures drawn in the report
SHOWN = 0.3  # the report draws predicted boxes scoring at least this


def _sizes(paths: pd.Series) -> list[tuple[int, int] | None]:
    from lamina.inputs.image import _header  # the image type's own reading of a file's upright size

    sizes = []
    for path in paths:
        header = _header(str(path)) if isinstance(path, str) else None
        sizes.append(None if header is None else (header[2], header[1]))
    return sizes


def locate(output: Any, decoded: pd.DataFrame, frame: pd.DataFrame, inputs: list[Any]) -> pd.DataFrame:
    """Each predicted box in its image file's pixels (the network saw the picture resized to its canvas)."""
    image = next(t for t in inputs if t.spatial)
    placed = []
    for found, size in zip(decoded[output.name], _sizes(frame[image.name])):
        if size is None or not found:
            placed.append(found)
            continue
        boxes = from_canvas(np.array([f["box"] for f in found]), size[0], size[1], output.canvas,
                            output.state["resize"])
        placed.append([{**f, "box": [round(float(v), 1) for v in b]} for f, b in zip(found, boxes)])
    out = decoded.copy()
    out[output.name] = pd.Series(placed, index=decoded.index, dtype=object)
    return out


def _draw(ax: Any, picture: np.ndarray, truth: Detections, found: Detections, classes: list[str]) -> None:
    from matplotlib.patches import Rectangle

    ax.imshow(plots.for_display(picture), cmap="gray" if picture.shape[0] == 1 else None, vmin=0, vmax=1)
    for b in truth.boxes:
        ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, color="lime", linewidth=1.5))
    for b, c, s in zip(found.boxes, found.labels, found.scores):
        if s < SHOWN:
            continue
        ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, color="red", linewidth=1,
                               linestyle="--"))
        ax.text(b[0], b[1], f"{classes[int(c)]} {s:.2f}", color="red", fontsize=6, va="bottom")
    ax.set_axis_off()


def report_section(output: Any, inputs: list[Any], test: pd.DataFrame, raw: np.ndarray) -> str:
    image = next(t for t in inputs if t.spatial)
    truth, found = output.truth(test[output.name]), output.detections(raw)
    classes = list(output.state["classes"])
    plt = plots.pyplot()
    shown = min(EXAMPLES, len(test))
    pictures = image.transform(test[image.name].iloc[:shown]).numpy()
    fig, axes = plt.subplots(1, max(shown, 1), figsize=(2.2 * max(shown, 1), 2.4), squeeze=False)
    for i in range(shown):
        _draw(axes[0, i], pictures[i], truth[i], found[i], classes)
    fig.suptitle("test pictures: true boxes (green), predicted (red, dashed; score ≥ 0.3)", fontsize=9)
    examples = img(plots.png(fig), f"{output.name} examples")
    fig, ax = plt.subplots(figsize=(5, 4))
    for c, name in enumerate(classes):
        curve = pr_curve(truth, found, c)
        if curve is not None:
            ax.plot(curve[0], curve[1], label=name)
    ax.set_xlabel("recall"), ax.set_ylabel("precision"), ax.set_xlim(0, 1), ax.set_ylim(0, 1.02)
    ax.set_title("precision-recall per class (IoU 0.5, test)", fontsize=10), ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return (heading(output.name) + paragraph(f"{len(test)} test pictures, {sum(len(t.labels) for t in truth)} true "
                                              "boxes") + examples + img(plots.png(fig), f"{output.name} PR curves"))
