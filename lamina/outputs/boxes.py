"""Boxes targets (object detection): each image's objects as boxes with a class, found by a CenterNet-style head.

A value is one image's objects (``lamina.outputs.boxes_values``). The head reads the image input's feature maps
(the spatial contract of ``lamina.model``) and gives a heat-map per class plus size and offset regressions at one
stride (``boxes_head``); decoding picks the heat-map peaks, thresholds them and runs NMS in plain torch after the
network (``boxes_decode``); metrics are COCO's AP (``boxes_metrics``).

>>> # config.yaml: outputs: [{name: objects, type: boxes, options: {score_threshold: 0.05, max_detections: 100}}]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, Field
from torch import nn

from lamina.errors import LaminaError
from lamina.outputs.base import OutputOptions, OutputType
from lamina.outputs.boxes_decode import detect
from lamina.outputs.boxes_head import BoxesHead, BoxesLoss
from lamina.outputs.boxes_metrics import Detections, detection_metrics
from lamina.outputs.boxes_values import parse, to_canvas


class BoxesOptions(OutputOptions):
    stride: int = Field(4, ge=1, le=64, description="pixels per heat-map cell (the finest feature map this coarse)")
    dim: int = Field(64, ge=8, le=1024, description="the head's channels")
    score_threshold: float = Field(0.05, ge=0, le=1, description="detections scoring lower are dropped")
    max_detections: int = Field(100, ge=1, le=1000, description="detections kept per image at most")
    nms_iou: float = Field(0.5, gt=0, le=1, description="NMS drops a box overlapping a better one of its class "
                                                        "by more than this IoU")


class BoxesState(BaseModel):
    classes: list[str]
    canvas: list[int]  # height, width of the image input's picture
    resize: str


class BoxesOutput(OutputType):
    kind = "boxes"
    Options = BoxesOptions
    state_schema = BoxesState
    spatial = True
    primary_metric = "map50"
    higher_is_better = True
    metric_names = ("map50", "map", "map75")

    # --- fitting: the classes, and the picture the image input makes ------------------------------------------

    def bind(self, inputs: list[Any]) -> None:
        sources = [t for t in inputs if t.spatial]
        if len(sources) != 1:
            raise LaminaError(f"output '{self.name}' (type boxes) needs exactly one image input, and the inputs have "
                              f"{len(sources)}; keep one image input")
        height, width, resize = sources[0].canvas()
        self.state = {**self.state, "canvas": [int(height), int(width)], "resize": resize}

    def fit(self, values: pd.Series) -> None:
        labels = sorted({label for i, v in enumerate(values) for label in parse(v, self.name, i).labels})
        if not labels:
            raise LaminaError(f"target '{self.name}': no box in the training split; label some objects")
        if "canvas" not in self.state:
            raise LaminaError(f"output '{self.name}' (type boxes) needs an image input to find boxes in")
        self.state = {"classes": labels, "canvas": self.state["canvas"], "resize": self.state["resize"]}

    @property
    def canvas(self) -> tuple[int, int]:
        return int(self.state["canvas"][0]), int(self.state["canvas"][1])

    def truth(self, values: pd.Series) -> list[Detections]:
        """Each row's boxes in canvas pixels with class indices (−1: a class not seen in training)."""
        index = {c: i for i, c in enumerate(self.state["classes"])}
        rows = []
        for i, value in enumerate(values):
            objects = parse(value, self.name, i)
            boxes = to_canvas(objects, self.canvas, self.state["resize"])
            labels = np.array([index.get(label, -1) for label in objects.labels], dtype=np.int64)
            rows.append(Detections(boxes, labels, np.ones(len(labels))))
        return rows

    def transform(self, values: pd.Series) -> torch.Tensor:
        """``(n, K, 5)``: class index, x0, y0, x1, y1 in canvas pixels; rows padded with class −1 to the most boxes."""
        rows = self.truth(values)
        out = torch.full((len(rows), max([1, *(len(r.labels) for r in rows)]), 5), -1.0)
        for i, r in enumerate(rows):
            known = r.labels >= 0
            out[i, : known.sum(), 0] = torch.from_numpy(r.labels[known]).float()
            out[i, : known.sum(), 1:] = torch.from_numpy(r.boxes[known]).float()
        return out

    # --- the network ----------------------------------------------------------------------------------------

    def head(self, in_dim: int, shapes: list[tuple[int, int]] | None = None) -> nn.Module:
        if not shapes:
            raise LaminaError(f"output '{self.name}' (type boxes) reads an image input's feature maps; add one")
        return BoxesHead(shapes, len(self.state["classes"]), self.options.stride, self.options.dim)

    def loss(self) -> nn.Module:
        return BoxesLoss(len(self.state["classes"]), self.canvas)

    def follow(self, target: torch.Tensor, theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        from lamina.outputs.boxes_moves import move_boxes

        return move_boxes(target, theta, size)

    # --- decoding and scoring -------------------------------------------------------------------------------

    def detections(self, raw: np.ndarray) -> list[Detections]:
        o = self.options
        return detect(raw, len(self.state["classes"]), self.canvas, o.score_threshold, o.max_detections, o.nms_iou)

    def decode(self, raw: np.ndarray) -> pd.DataFrame:
        """One list per row: ``{"label", "score", "box": [x0, y0, x1, y1]}`` in the network's picture's pixels."""
        classes = self.state["classes"]
        rows = [[{"label": classes[int(c)], "score": round(float(s), 4), "box": [round(float(v), 1) for v in b]}
                 for b, c, s in zip(d.boxes, d.labels, d.scores)] for d in self.detections(raw)]
        return pd.DataFrame({self.name: pd.Series(rows, dtype=object)})

    def metrics(self, values: pd.Series, raw: np.ndarray) -> dict[str, Any]:
        return detection_metrics(self.truth(values), self.detections(raw), list(self.state["classes"]))

    # --- faces ----------------------------------------------------------------------------------------------

    # One box is explained: the top detection of each row, i.e. the heat-map cell (class, y, x) scoring highest on
    # the row itself. Every cell's score is a "class" of explain's, and ``explained_class`` picks that one, so its
    # saliency is of one fixed, smooth score (a max over cells would jump between boxes along the path).
    explain_rows = 4

    def explained_score(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(raw[:, : len(self.state["classes"])]).flatten(1)

    def explained_class(self, raw: np.ndarray) -> np.ndarray | None:
        self._explained_grid = (int(raw.shape[-2]), int(raw.shape[-1]))  # what explained_label reads cells with
        return np.asarray(raw)[:, : len(self.state["classes"])].reshape(len(raw), -1).argmax(1)

    def explained_label(self, index: int) -> str:
        h, w = getattr(self, "_explained_grid", (1, 1))
        c, cell = divmod(index, h * w)
        sy, sx = self.canvas[0] / h, self.canvas[1] / w
        return f"{self.state['classes'][c]} centred near ({(cell % w + 0.5) * sx:.0f}, {(cell // w + 0.5) * sy:.0f})"

    def explained_score_name(self) -> str:
        return f"score of the top box in '{self.name}'"

    def classical_counterparts(self, inputs: list[Any], split: dict[str, pd.DataFrame]) -> list[dict[str, Any]] | None:
        from lamina.outputs.boxes_classical import counterparts

        return counterparts(self, inputs, split)

    def locate(self, decoded: pd.DataFrame, frame: pd.DataFrame, inputs: list[Any]) -> pd.DataFrame:
        from lamina.outputs.boxes_faces import locate

        return locate(self, decoded, frame, inputs)

    def serve_entry(self, record: dict[str, Any], raw: np.ndarray) -> dict[str, Any]:
        return {"prediction": record[self.name]}  # the boxes; a box's score is its probability

    def page_widget(self) -> dict[str, Any]:
        return {"widget": "boxes"}

    def report_section(self, inputs: list[Any], test: pd.DataFrame, raw: np.ndarray) -> str | None:
        from lamina.outputs.boxes_faces import report_section

        return report_section(self, inputs, test, raw)
