"""MTCNN (lamina.inputs.image_faces_*) against the reference: facenet-pytorch's own network classes and
``detect_face``, executed from the source in its wheel (never installed), on real photos that ship with
scikit-image. The reference's torchvision NMS is replaced by ours here, as torchvision is not installed."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from lamina.errors import LaminaError
from lamina.inputs import image_faces_nets as nets
from lamina.inputs.image_faces_align import TEMPLATE, align, similarity
from lamina.inputs.image_faces_detect import Detector
from lamina.outputs.boxes_nms import batched_nms

skimage_data = pytest.importorskip("skimage.data")


def _wheel() -> Path:
    try:
        return nets.find_wheel()
    except LaminaError as error:
        pytest.skip(str(error))


def _reference(wheel: Path) -> dict[str, Any]:
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


@pytest.fixture(scope="module")
def mtcnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Detector, dict[str, Any]]:
    wheel = _wheel()
    home = tmp_path_factory.mktemp("wheels")
    shutil.copy(wheel, home / wheel.name)  # converted afresh here: the conversion itself is under test
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAMINA_WHEELS", str(home))
        detector = Detector()
    assert sorted(p.name for p in (home / "mtcnn").iterdir()) == ["onet.safetensors", "pnet.safetensors",
                                                                  "rnet.safetensors", "source.json"]
    return detector, _reference(wheel)


def _mosaic() -> np.ndarray:
    """Sixteen of scikit-image's LFW faces, enlarged to 60 pixels, on a grey 4×4 grid: a real 'group photo'."""
    faces = skimage_data.lfw_subset()[:16]
    canvas = np.full((4 * 80, 4 * 80, 3), 128, dtype=np.uint8)
    for i, face in enumerate(faces):
        tile = Image.fromarray((face * 255).round().astype(np.uint8)).resize((60, 60), Image.Resampling.BICUBIC)
        y, x = 10 + 80 * (i // 4), 10 + 80 * (i % 4)
        canvas[y:y + 60, x:x + 60] = np.asarray(tile.convert("RGB"))
    return canvas


def _run_reference(ref: dict[str, Any], pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        boxes, points = ref["detect_face"](pixels[None], 20, ref["pnet"], ref["rnet"], ref["onet"], [0.6, 0.7, 0.7],
                                           0.709, "cpu")
    return np.asarray(boxes[0], dtype=np.float64).reshape(-1, 5), np.asarray(points[0], dtype=np.float64)


def test_nets_match_the_reference_layer_for_layer(mtcnn: tuple[Detector, dict[str, Any]]) -> None:
    detector, ref = mtcnn
    picture = torch.from_numpy(skimage_data.astronaut()).permute(2, 0, 1)[None].float()
    for ours, theirs, side in ((detector.pnet, ref["pnet"], 64), (detector.rnet, ref["rnet"], 24),
                               (detector.onet, ref["onet"], 48)):
        crops = (torch.nn.functional.interpolate(picture, size=(side, side), mode="area") - 127.5) / 128
        with torch.no_grad():
            for a, b in zip(ours(crops), theirs(crops)):
                torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("photo", ["astronaut", "mosaic", "coffee"])
def test_detections_match_the_reference_on_real_photos(mtcnn: tuple[Detector, dict[str, Any]], photo: str) -> None:
    detector, ref = mtcnn
    pixels = _mosaic() if photo == "mosaic" else getattr(skimage_data, photo)()
    found = detector.detect(pixels)
    boxes, points = _run_reference(ref, pixels)
    assert len(found) == len(boxes) == {"astronaut": 1, "mosaic": 16, "coffee": 0}[photo]
    order = np.argsort(-boxes[:, 4], kind="stable")  # the reference's final NMS keeps its own order
    np.testing.assert_allclose(found.boxes, boxes[order, :4], atol=1e-2)
    np.testing.assert_allclose(found.scores, boxes[order, 4], atol=1e-5)
    np.testing.assert_allclose(found.landmarks, points[order], atol=1e-2)


def test_lfw_faces_are_found_and_non_faces_are_not(mtcnn: tuple[Detector, dict[str, Any]]) -> None:
    detector = mtcnn[0]
    crops = skimage_data.lfw_subset()  # 100 face crops, then 100 non-faces, 25×25 grey
    picks = list(range(0, 100, 4)) + list(range(100, 200, 4))
    found = []
    for i in picks:
        tile = Image.fromarray((crops[i] * 255).round().astype(np.uint8)).resize((50, 50), Image.Resampling.BICUBIC)
        found.append(len(detector.detect(np.asarray(tile.convert("RGB")))))
    faces, others = np.array(found[:25]), np.array(found[25:])
    assert (faces > 0).mean() >= 0.9  # all 100 at this size when measured (docs/benchmarks.md)
    assert (others > 0).sum() <= 2


def test_alignment_puts_the_landmarks_on_the_template(mtcnn: tuple[Detector, dict[str, Any]]) -> None:
    image = Image.fromarray(skimage_data.astronaut())
    landmarks = mtcnn[0].detect(np.asarray(image)).landmarks[0]
    matrix = similarity(landmarks, TEMPLATE)
    moved = landmarks @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(moved - TEMPLATE).max() < 6  # five points, four degrees of freedom: near, not exact
    assert abs(np.linalg.det(matrix[:, :2])) > 0  # a similarity: equal singular values, no reflection
    singular = np.linalg.svd(matrix[:, :2], compute_uv=False)
    assert singular[0] == pytest.approx(singular[1]) and np.linalg.det(matrix[:, :2]) > 0
    # A face rotated by 20° aligns to (nearly) the same crop as the upright one.
    turned = image.rotate(20, resample=Image.Resampling.BILINEAR, center=tuple(landmarks[2]))
    upright = np.asarray(align(image, landmarks), dtype=np.float64)
    again = np.asarray(align(turned, mtcnn[0].detect(np.asarray(turned)).landmarks[0]), dtype=np.float64)
    assert np.abs(upright - again).mean() < 12


def test_faces_command_writes_crops_and_json(mtcnn: tuple[Detector, dict[str, Any]], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from lamina.identity import photos

    monkeypatch.setattr(photos, "Detector", lambda min_face: mtcnn[0])
    (tmp_path / "in" / "more").mkdir(parents=True)
    Image.fromarray(skimage_data.astronaut()).save(tmp_path / "in" / "astronaut.jpg")
    Image.fromarray(_mosaic()).save(tmp_path / "in" / "more" / "group.png")
    Image.fromarray(skimage_data.coffee()).save(tmp_path / "in" / "coffee.png")
    (tmp_path / "in" / "broken.jpg").write_bytes(b"not an image")
    message = photos.find_faces(tmp_path / "in", tmp_path / "crops", side=96)
    assert message.startswith("wrote 17 aligned faces from 3 photos")
    index = json.loads((tmp_path / "crops" / "faces.json").read_text())
    by_file = {r["file"]: r for r in index["photos"]}
    assert sorted(by_file) == ["astronaut.jpg", "coffee.png", "more/group.png"]
    assert by_file["coffee.png"]["faces"] == [] and len(by_file["more/group.png"]["faces"]) == 16
    face = by_file["astronaut.jpg"]["faces"][0]
    assert 150 < face["box"][0] < 200 and len(face["landmarks"]) == 5
    with Image.open(tmp_path / "crops" / face["crop"]) as crop:
        assert crop.size == (96, 96)


def test_missing_wheel_is_one_line_naming_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_WHEELS", str(tmp_path))
    with pytest.raises(LaminaError, match="pip download --no-deps facenet-pytorch"):
        nets.load_nets()


def test_image_input_with_faces_detect_aligns_in_training_and_prediction(tmp_path: Path) -> None:
    import pandas as pd

    from lamina.inputs.image import ImageInput, ImageOptions

    _wheel()
    photo = Image.fromarray(skimage_data.astronaut())
    photo.save(tmp_path / "upright.png")
    photo.rotate(15, resample=Image.Resampling.BILINEAR).save(tmp_path / "turned.png")
    Image.fromarray(skimage_data.coffee()).save(tmp_path / "coffee.png")
    column = ImageInput("photo", ImageOptions(faces="detect", size=56, workers=0))
    column.fit(pd.Series([str(tmp_path / "upright.png"), str(tmp_path / "turned.png")]))
    assert column.state["faces"] == "detect" and (column.state["height"], column.state["width"]) == (56, 56)
    saved = ImageInput("photo", ImageOptions(workers=0), dict(column.state))  # a reloaded model: the state decides
    pixels = saved.transform(pd.Series([str(tmp_path / "upright.png"), str(tmp_path / "turned.png")])).float()
    assert pixels.shape == (2, 3, 56, 56)
    assert (pixels[0] - pixels[1]).abs().mean() < 15  # the turned face is turned back (6 when measured)
    whole = torch.from_numpy(np.array(photo.resize((56, 56)))).permute(2, 0, 1).float()
    assert (pixels[0] - whole).abs().mean() > 30  # a face crop, not the resized photo (89)
    with pytest.raises(LaminaError, match="coffee.png.*no face found"):
        column.transform(pd.Series([str(tmp_path / "upright.png"), str(tmp_path / "coffee.png")]))
