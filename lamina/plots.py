"""Small matplotlib helpers (Agg backend: no display needed) shared by explain, probes, compare and the report.

Every function returns PNG bytes; ``save`` writes them and ``data_uri`` embeds them in a self-contained HTML page.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def png(fig: Any) -> bytes:
    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def save(data: bytes, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def bars(names: list[str], values: list[float], title: str, xlabel: str, errors: list[float] | None = None,
         top: int = 20) -> bytes:
    """A ranked horizontal bar chart (largest at the top); negative values drawn in another colour."""
    plt = pyplot()
    order = np.argsort(-np.abs(np.asarray(values, dtype=float)))[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(order) + 1.2))
    shown = [values[i] for i in order]
    ax.barh([names[i] for i in order], shown, xerr=[errors[i] for i in order] if errors else None,
            color=["#c0392b" if v < 0 else "#2e86c1" for v in shown])
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.tick_params(axis="y", labelsize=8)
    return png(fig)


def grouped_bars(groups: list[str], series: dict[str, list[float]], title: str, ylabel: str) -> bytes:
    """Bars of several series (models) per group (metrics)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(groups) * max(1, len(series)) / 2), 3.6))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + i * width - 0.4 + width / 2, values, width, label=name)
    ax.set_xticks(x, groups, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return png(fig)


def for_display(picture: np.ndarray) -> np.ndarray:
    """An image ``(C, H, W)`` as ``imshow`` draws it right: ``(H, W)`` or ``(H, W, 3)`` floats in [0, 1]. 8-bit
    pixels keep their scale; 16-bit ones (scans, DICOM) are stretched to their own range, which a 0-255 scale
    would draw white."""
    array = np.asarray(picture, dtype=np.float32)
    if np.asarray(picture).dtype == np.uint8:
        array = array / 255.0
    else:
        low, high = float(array.min()), float(array.max())
        array = (array - low) / (high - low) if high > low else np.zeros_like(array)
    return array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)


def saliency_grid(images: np.ndarray, maps: np.ndarray, titles: list[str], title: str) -> bytes:
    """Each image (n, C, H, W; 8 or 16 bits) beside its signed saliency heat-map (n, H, W)."""
    plt = pyplot()
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n + 0.4, 3.6), squeeze=False)
    for i in range(n):
        image = images[i]
        axes[0, i].imshow(for_display(image), cmap="gray" if image.shape[0] == 1 else None, vmin=0, vmax=1)
        axes[0, i].set_title(titles[i], fontsize=7)
        limit = float(np.abs(maps[i]).max()) or 1.0
        axes[1, i].imshow(maps[i], cmap="RdBu_r", vmin=-limit, vmax=limit)
        for ax in axes[:, i]:
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    return png(fig)
