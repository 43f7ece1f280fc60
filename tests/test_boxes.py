"""The boxes output type: targets, the heat-map loss, decoding, NMS, boxes moving with their pixels, and AP
against pycocotools on the same predictions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lamina.data.read import read_table
from lamina.errors import LaminaError
from lamina.inputs.image_encoder import Augment, warp
from lamina.outputs.boxes import BoxesOutput, BoxesOptions
from lamina.outputs.boxes_decode import detect
from lamina.outputs.boxes_head import centres
from lamina.outputs.boxes_metrics import Detections, detection_metrics
from lamina.outputs.boxes_moves import move_boxes
from lamina.outputs.boxes_nms import nms
from lamina.outputs.boxes_values import from_canvas, placement, to_canvas, parse
from boxes_data import write_coco


def reference_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """The textbook greedy loop (Fast R-CNN's py_cpu_nms, without its +1 pixel)."""
    order, kept = list(np.argsort(-scores, kind="stable")), []
    while order:
        i, order = order[0], order[1:]
        kept.append(i)
        rest = np.array(order, dtype=int)
        if not len(rest):
            break
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.clip(rb - lt, 0, None).prod(1)
        union = np.prod(boxes[i, 2:] - boxes[i, :2]) + np.prod(boxes[rest, 2:] - boxes[rest, :2], 1) - inter
        order = [j for j, o in zip(rest, inter / union) if o <= iou]
    return kept


def random_boxes(rng: np.random.Generator, n: int, size: float = 200) -> np.ndarray:
    xy = rng.uniform(0, size, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(4, 40, (n, 2))], 1)


def test_nms_keeps_what_the_textbook_loop_keeps() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 7, 300, 2500):  # 2,500: more than one block of the overlap matrix
        boxes, scores = random_boxes(rng, n), rng.uniform(size=n)
        kept = nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).tolist()
        assert kept == reference_nms(boxes, scores, 0.5)
    # A detector's raw output: many jittered copies of a few boxes, at several thresholds; and exact duplicates.
    centre = random_boxes(rng, 12)[rng.integers(0, 12, 700)]
    clustered = centre + rng.normal(0, 3, centre.shape)
    clustered[:, 2:] = np.maximum(clustered[:, 2:], clustered[:, :2] + 1)
    for boxes in (clustered, np.repeat(random_boxes(rng, 5), 60, 0)):
        scores = rng.uniform(size=len(boxes))
        for iou in (0.1, 0.5, 0.8):
            kept = nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou).tolist()
            assert kept == reference_nms(boxes, scores, iou)
    assert nms(torch.zeros(0, 4), torch.zeros(0)).numel() == 0


def fitted(canvas: tuple[int, int] = (48, 64), **options) -> BoxesOutput:
    out = BoxesOutput("objects", BoxesOptions(**options), {"canvas": list(canvas), "resize": "pad"})
    out.fit(pd.Series([json.dumps({"width": 64, "height": 48, "boxes": [[1, 2, 20, 30, "car"], [30, 5, 60, 40,
                                                                                            "person"]]})]))
    return out


def perfect_raw(target: torch.Tensor, classes: int, grid: tuple[int, int], canvas: tuple[int, int]) -> torch.Tensor:
    """The raw maps a perfect head would give for ``target``: one confident peak per box, exact regressions."""
    c = centres(target, grid, canvas)
    raw = torch.full((target.shape[0], classes + 4, *grid), -9.0)
    raw[:, classes:] = 0.0
    for n, k in zip(*torch.nonzero(c["valid"], as_tuple=True)):
        y, x = int(c["iy"][n, k]), int(c["ix"][n, k])
        raw[n, int(c["cls"][n, k]), y, x] = 6.0
        raw[n, classes:classes + 2, y, x] = c["offset"][n, k]
        raw[n, classes + 2:, y, x] = c["size"][n, k]
    return raw


def test_targets_decode_back_to_their_boxes_and_score_one() -> None:
    out = fitted()
    values = pd.Series([json.dumps({"width": 128, "height": 96, "boxes": [[10, 8, 50, 70, "car"],
                                                                           [60, 20, 120, 90, "person"]]}),
                        json.dumps({"width": 64, "height": 64, "boxes": [[5, 5, 30, 40, "person"]]})])
    target = out.transform(values)
    assert target.shape == (2, 2, 5) and target[1, 1, 0] == -1  # padded to the most boxes
    # 128x96 onto a 64x48 canvas: half size, no padding; 64x64 letterboxed: 48 px wide, 8 px each side
    assert torch.allclose(target[0, 0], torch.tensor([0, 5, 4, 25, 35.0]))
    assert torch.allclose(target[1, 0], torch.tensor([1, 8 + 5 * 0.75, 5 * 0.75, 8 + 30 * 0.75, 40 * 0.75]))
    raw = perfect_raw(target, 2, (12, 16), out.canvas).numpy()
    found = out.detections(raw)
    assert np.allclose(found[0].boxes, target[0, :, 1:].numpy(), atol=1e-4)
    assert found[0].labels.tolist() == [0, 1] and len(found[1].labels) == 1
    assert out.metrics(values, raw)["map"] == pytest.approx(1.0)
    frame = out.decode(raw)
    assert frame["objects"][1][0]["label"] == "person"
    # and back in the image's own pixels, as predict writes them
    assert np.allclose(from_canvas(found[1].boxes, 64, 64, out.canvas, "pad"), [[5, 5, 30, 40]], atol=1e-3)


def test_the_loss_is_lowest_for_the_perfect_maps_and_trains_a_head() -> None:
    out = fitted()
    target = out.transform(pd.Series([json.dumps({"width": 64, "height": 48, "boxes": [[4, 4, 28, 30, "car"]]})]))
    loss = out.loss()
    perfect = perfect_raw(target, 2, (12, 16), out.canvas)
    assert loss(perfect, target) < 0.05 < loss(torch.zeros_like(perfect), target)
    torch.manual_seed(0)
    head = out.head(0, [(8, 2), (16, 4), (16, 8)])
    maps = [torch.randn(1, 8, 24, 32), torch.randn(1, 16, 12, 16), torch.randn(1, 16, 6, 8)]
    optimiser = torch.optim.Adam(head.parameters(), 1e-2)
    first = loss(head(None, maps), target).item()
    for _ in range(60):
        optimiser.zero_grad()
        step = loss(head(None, maps), target)
        step.backward()
        optimiser.step()
    assert step.item() < first / 4
    head.eval()
    assert out.detections(head(None, maps).detach().numpy())[0].labels[0] == 0


def test_boxes_move_with_their_pixels() -> None:
    """A white box on black, moved by the image augmentation: the moved box is the moved white pixels' extent."""
    image = torch.zeros(5, 1, 60, 80)
    boxes = torch.tensor([[[0, 20, 10, 50, 40]]] * 5, dtype=torch.float32)
    image[:, :, 10:40, 20:50] = 1.0
    augment = Augment(shift=0.1, rotation=0, scale=0.2, flip=True, brightness=0, contrast=0)
    theta = augment.theta(torch.tensor([[0, 0.5, 0.3, -0.2, 1], [0, -0.5, -0.2, 0.4, -1], [0, 0, 0, 0, 1]]))
    # Random crops (issue 16's "crop"): half of each side cut at most, the window anywhere inside the picture.
    cropping = Augment(shift=0, rotation=0, scale=0, flip=False, brightness=0, contrast=0, crop=0.5)
    cropped = cropping.theta(torch.tensor([[0] * 7 + [1, -1, 0.6, -0.8], [0] * 7 + [0.2, 0.5, -1, 1]]))
    assert cropping.moves and (cropped[:, :, :2].diagonal(dim1=1, dim2=2) >= 0.5 - 1e-6).all()
    assert (cropped[:, :, :2].diagonal(dim1=1, dim2=2).abs() + cropped[:, :, 2].abs() <= 1 + 1e-6).all()  # inside
    theta = torch.cat([theta, cropped])
    moved = warp(image, theta, mode="nearest")
    moved_boxes = move_boxes(boxes, theta, (60, 80))
    assert (moved_boxes[3:, 0, 0] == 0).all()  # cut by the crops, still in the picture
    for row in range(5):
        ys, xs = torch.nonzero(moved[row, 0] > 0.5, as_tuple=True)
        extent = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
        assert torch.allclose(moved_boxes[row, 0, 1:], extent, atol=1.01), (row, moved_boxes[row], extent)
    # a box the picture moves 36 px right of its edge is dropped
    out = move_boxes(torch.tensor([[[1, 70, 10, 80, 20]]]), torch.tensor([[[1, 0, -0.9], [0, 1, 0.0]]]), (60, 80))
    assert out[0, 0, 0] == -1


def test_placement_matches_pillows_letterbox() -> None:
    from PIL import Image, ImageOps

    picture = Image.new("L", (90, 40))
    picture.paste(255, (30, 10, 60, 30))
    padded = np.asarray(ImageOps.pad(picture, (64, 48), color=0)) > 127
    ys, xs = np.nonzero(padded)
    box = to_canvas(parse({"width": 90, "height": 40, "boxes": [[30, 10, 60, 30, "x"]]}, "o", 0), (48, 64), "pad")
    assert np.allclose(box[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=1)
    assert placement(64, 48, (48, 64), "pad") == (1.0, 1.0, 0.0, 0.0)


def coco_predictions(rng: np.random.Generator, truth: list[Detections]) -> list[Detections]:
    """Noisy detections: jittered true boxes, some missed, some false ones, random scores and ties."""
    found = []
    for t in truth:
        keep = rng.uniform(size=len(t.labels)) > 0.2
        boxes = t.boxes[keep] + rng.normal(0, 3, (keep.sum(), 4))
        extra = random_boxes(rng, int(rng.integers(0, 4)), 100)
        boxes = np.clip(np.concatenate([boxes, extra]), 0, 130)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        labels = np.concatenate([t.labels[keep], rng.integers(0, 3, len(extra))])
        scores = np.round(rng.uniform(size=len(labels)), 2)  # rounded: ties happen, as they do in real runs
        found.append(Detections(boxes, labels, scores))
    return found


def test_map_equals_pycocotools_on_the_same_predictions() -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(3)
    truth = []
    for _ in range(30):
        m = int(rng.integers(0, 6))
        truth.append(Detections(random_boxes(rng, m, 100), rng.integers(0, 3, m), np.ones(m)))
    predicted = coco_predictions(rng, truth)
    names = ["a", "b", "c"]
    ours = detection_metrics(truth, predicted, names)

    gt = COCO()
    gt.dataset = {"images": [{"id": i + 1} for i in range(len(truth))], "categories": [{"id": c + 1} for c in range(3)],
                  "annotations": [{"id": len(a) + 1, "image_id": i + 1, "category_id": int(c) + 1, "iscrowd": 0,
                                   "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])}
                                  for a in [[]] for i, t in enumerate(truth) for b, c in zip(t.boxes, t.labels)
                                  if a.append(0) is None]}
    gt.createIndex()
    dt = gt.loadRes([{"image_id": i + 1, "category_id": int(c) + 1, "score": float(s),
                      "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
                     for i, p in enumerate(predicted) for b, c, s in zip(p.boxes, p.labels, p.scores)])
    evaluation = COCOeval(gt, dt, "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, :, 0, 2]  # thresholds, recalls, classes; area all, 100 dets
    assert ours["map"] == pytest.approx(precision[precision > -1].mean(), abs=1e-4)
    assert ours["map50"] == pytest.approx(precision[0][precision[0] > -1].mean(), abs=1e-4)
    for c, name in enumerate(names):
        assert ours[f"ap50_{name}"] == pytest.approx(precision[0, :, c].mean(), abs=1e-4)
    assert 0.2 < ours["map50"] < 0.95  # a real test: neither nothing nor everything found


def test_coco_and_yolo_files_read_into_one_table(tmp_path: Path) -> None:
    path = write_coco(tmp_path / "coco", images=6)
    frame = read_table(path)
    assert list(frame.columns) == ["image", "objects"] and len(frame) == 6
    coco = json.loads(path.read_text())
    first = json.loads(frame["objects"][0])
    x, y, w, h = coco["annotations"][0]["bbox"]
    assert first["boxes"][0][:4] == [x, y, x + w, y + h] and (first["width"], first["height"]) == (64, 48)
    # the same set as a YOLO folder
    yolo = tmp_path / "yolo"
    (yolo / "labels").mkdir(parents=True)
    (yolo / "images").symlink_to(tmp_path / "coco" / "images")
    (yolo / "classes.txt").write_text("\n".join(c["name"] for c in coco["categories"]))
    for image in coco["images"]:
        lines = [f"{a['category_id'] - 1} {(a['bbox'][0] + a['bbox'][2] / 2) / 64} {(a['bbox'][1] + a['bbox'][3] / 2) / 48}"
                 f" {a['bbox'][2] / 64} {a['bbox'][3] / 48}" for a in coco["annotations"] if a["image_id"] == image["id"]]
        (yolo / "labels" / (Path(image["file_name"]).stem + ".txt")).write_text("\n".join(lines))
    again = read_table(yolo)
    for a, b in zip(frame["objects"], again["objects"]):
        a, b = json.loads(a), json.loads(b)
        assert [r[4] for r in a["boxes"]] == [r[4] for r in b["boxes"]]
        assert np.allclose([r[:4] for r in a["boxes"]], [r[:4] for r in b["boxes"]], atol=1e-6)


@pytest.mark.parametrize("case, message", [
    ("outside", r"annotations.json: annotation 1: bbox \[60, 40, 20, 20\] lies outside its 64x48 image 000.png"),
    ("category", r"annotations.json: annotation 1: category_id 9 is not in the categories list \(1, 2, 3\)"),
    ("missing", r"annotations.json: image 'images/000.png' \(id 1\): no such file"),
    ("empty", r"annotations.json: has 3 images and 0 annotations"),
])
def test_bad_coco_files_are_one_line(tmp_path: Path, case: str, message: str) -> None:
    path = write_coco(tmp_path, images=3)
    coco = json.loads(path.read_text())
    if case == "outside":
        coco["annotations"][0]["bbox"] = [60, 40, 20, 20]
    elif case == "category":
        coco["annotations"][0]["category_id"] = 9
    elif case == "missing":
        (tmp_path / "images" / "000.png").unlink()
    else:
        coco["annotations"] = []
    path.write_text(json.dumps(coco))
    with pytest.raises(LaminaError, match=message) as error:
        read_table(path)
    assert "\n" not in str(error.value)


def test_bad_yolo_lines_name_the_file_and_line(tmp_path: Path) -> None:
    write_coco(tmp_path, images=2)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "000.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.95 0.5 0.3 0.2\n")
    with pytest.raises(LaminaError, match=r"labels/000.txt: line 2: box .* lies outside its image"):
        read_table(tmp_path)
    (tmp_path / "labels" / "000.txt").write_text("")
    with pytest.raises(LaminaError, match=r"labels: holds no box for any image"):
        read_table(tmp_path)


def test_a_box_value_outside_its_image_is_one_line() -> None:
    with pytest.raises(LaminaError, match=r"target 'objects', row 3, box 1 .*outside its 10x10 image"):
        parse({"width": 10, "height": 10, "boxes": [[2, 2, 12, 8, "car"]]}, "objects", 2)
    assert math.isclose(parse('{"width": 10, "height": 10, "boxes": []}', "o", 0).width, 10)


def test_rendered_street_scenes_read_as_a_detection_table(tmp_path: Path) -> None:
    """examples/driving/make_data.py: pybullet scenes, boxes from the segmentation masks, inside their images."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "driving"))
    from make_data import CATEGORIES, make

    frame = read_table(make(tmp_path, images=3, seed=0, poses="train"))
    assert len(frame) == 3
    for value in frame["objects"]:
        objects = parse(value, "objects", 0)  # parse checks every box lies inside its image
        assert objects.labels and set(objects.labels) <= set(CATEGORIES)
        assert (objects.boxes[:, 2:] - objects.boxes[:, :2] >= 1).all()
