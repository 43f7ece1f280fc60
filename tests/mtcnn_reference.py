"""facenet-pytorch's MTCNN as the reference, run from the source and weights in its wheel (never installed):
its network classes and ``detect_face`` are executed with torchvision's ``batched_nms`` replaced by ours, as
torchvision is not installed. Used by tests/test_mtcnn.py and benchmarks/mtcnn.py."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from lamina.inputs import image_faces_nets as nets
from lamina.outputs.boxes_nms import batched_nms


def reference(wheel: Path) -> dict[str, Any]:
    """facenet-pytorch's PNet/RNet/ONet and detect_face, from the wheel's source, with its own weights."""
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read("facenet_pytorch/models/mtcnn.py").decode()
        detect = archive.read("facenet_pytorch/models/utils/detect_face.py").decode()
        states = {n: torch.load(io.BytesIO(archive.read(f"facenet_pytorch/data/{n}.pt")), weights_only=True)
                  for n in nets.NETS}
    for line in ("from torchvision.transforms import functional as F\n",
                 "from torchvision.ops.boxes import batched_nms\n"):
        assert line in detect
        detect = detect.replace(line, "")
    namespace: dict[str, Any] = {"batched_nms": batched_nms}
    exec(compile(detect, "detect_face.py", "exec"), namespace)
    classes: dict[str, Any] = {}
    source = source[:source.index("class MTCNN")].replace("from .utils.detect_face import detect_face, extract_face\n",
                                                          "")
    exec(compile(source, "mtcnn.py", "exec"), classes)
    ref = {}
    for name in nets.NETS:
        net = classes[name[0].upper() + name[1:].replace("net", "Net")](pretrained=False)
        net.load_state_dict(states[name])
        ref[name] = net.eval()
    ref["detect_face"] = namespace["detect_face"]
    return ref


def lfw_tiles(indices: list[int] | range, side: int) -> list[np.ndarray]:
    """scikit-image's LFW crops (25×25 grey: 100 faces, then 100 non-faces) enlarged to ``side``, as RGB."""
    from skimage import data

    crops = data.lfw_subset()
    return [np.asarray(Image.fromarray((crops[i] * 255).round().astype(np.uint8))
                       .resize((side, side), Image.Resampling.BICUBIC).convert("RGB")) for i in indices]


def mosaic() -> np.ndarray:
    """Sixteen of scikit-image's LFW faces, enlarged to 60 pixels, on a grey 4×4 grid: a real 'group photo'."""
    canvas = np.full((4 * 80, 4 * 80, 3), 128, dtype=np.uint8)
    for i, tile in enumerate(lfw_tiles(range(16), 60)):
        y, x = 10 + 80 * (i // 4), 10 + 80 * (i % 4)
        canvas[y:y + 60, x:x + 60] = tile
    return canvas


def run_reference(ref: dict[str, Any], pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        boxes, points = ref["detect_face"](pixels[None], 20, ref["pnet"], ref["rnet"], ref["onet"], [0.6, 0.7, 0.7],
                                           0.709, "cpu")
    return np.asarray(boxes[0], dtype=np.float64).reshape(-1, 5), np.asarray(points[0], dtype=np.float64)

