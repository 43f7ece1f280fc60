"""MTCNN (lamina.inputs.image_faces_*) against the reference: facenet-pytorch's own network classes and
``detect_face``, executed from the source in its wheel (never installed), on real photos that ship with
scikit-image. The reference's torchvision NMS is replaced by ours here, as torchvision is not installed."""

from __future__ import annotations

import json
import shutil
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
from mtcnn_reference import lfw_tiles, mosaic, reference, run_reference

skimage_data = pytest.importorskip("skimage.data")


def _wheel() -> Path:
    try:
        return nets.find_wheel()
    except LaminaError as error:
        pytest.skip(str(error))


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
    return detector, reference(wheel)


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
    pixels = mosaic() if photo == "mosaic" else getattr(skimage_data, photo)()
    found = detector.detect(pixels)
    boxes, points = run_reference(ref, pixels)
    assert len(found) == len(boxes) == {"astronaut": 1, "mosaic": 16, "coffee": 0}[photo]
    order = np.argsort(-boxes[:, 4], kind="stable")  # the reference's final NMS keeps its own order
    np.testing.assert_allclose(found.boxes, boxes[order, :4], atol=1e-2)
    np.testing.assert_allclose(found.scores, boxes[order, 4], atol=1e-5)
    np.testing.assert_allclose(found.landmarks, points[order], atol=1e-2)


def test_lfw_faces_are_found_and_non_faces_are_not(mtcnn: tuple[Detector, dict[str, Any]]) -> None:
    detector = mtcnn[0]
    picks = list(range(0, 100, 4)) + list(range(100, 200, 4))  # a quarter of the 100 faces and 100 non-faces
    found = [len(detector.detect(tile)) for tile in lfw_tiles(picks, 50)]
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
    Image.fromarray(mosaic()).save(tmp_path / "in" / "more" / "group.png")
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
    with pytest.raises(LaminaError, match="nope: no such file or folder"):
        photos.find_faces(tmp_path / "nope", tmp_path / "crops")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LaminaError, match="no image files"):
        photos.find_faces(tmp_path / "empty", tmp_path / "again")


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
