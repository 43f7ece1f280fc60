"""Object detection end to end on a COCO file a test writes (real digit images pasted onto noisy canvases): init
infers the boxes type, train prints mAP, predict writes each image's boxes in its own pixels, export's ONNX network
plus Python decoding gives the same boxes as PyTorch, compare's HOG + SVM counterpart is scored with the same mAP,
and the served page draws the boxes on an uploaded picture (headless Chromium)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from boxes_data import write_coco
from conftest import assert_ok, assert_user_error, read_yaml, run_cli, write_yaml
from test_serve import Server, page_of

from lamina.data.read import read_table


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("detection")
    write_coco(folder / "scenes", images=60)
    result = assert_ok(run_cli("init", "scenes/annotations.json", "--target", "objects", cwd=folder))
    assert "objects (boxes)" in result.stdout
    config = read_yaml(folder / "config.yaml")
    assert config["outputs"] == [{"name": "objects", "type": "boxes"}]
    config["inputs"][0]["options"] = {"encoder": "cnn", "widths": [16, 32, 48], "rotation": 0, "shift": 0.05,
                                      "scale": 0.05}
    config["trainer"].update(epochs=16, batch_size=8, learning_rate=0.003, time_limit="3m")
    config["trainer"]["early_stopping"]["patience"] = 16
    write_yaml(config, folder / "config.yaml")
    trained = assert_ok(run_cli("train", "config.yaml", "-o", "runs/digits", cwd=folder, timeout=400))
    return {"folder": folder, "model": folder / "runs" / "digits", "stdout": trained.stdout}


def test_train_prints_map_and_predict_writes_boxes_in_image_pixels(detector: dict) -> None:
    folder, model = detector["folder"], detector["model"]
    for metric in ("map50", "map", "ap50_0", "ap50_1", "ap50_7"):
        assert metric in detector["stdout"]
    metrics = json.loads((model / "lamina.json").read_text())["metrics"]
    test = metrics["test"]["objects"] if "test" in metrics else metrics["objects"]["test"]
    assert test["map50"] > 0.5, test  # chance (a box anywhere) scores ~0
    report = (model / "report.html").read_text()
    assert 'alt="objects examples"' in report and 'alt="objects PR curves"' in report
    assert "score of the top box" in report  # the saliency of one box
    assert_ok(run_cli("predict", "runs/digits", "scenes/images", "-o", "boxes.jsonl", "-k", "image", cwd=folder))
    lines = [json.loads(line) for line in (folder / "boxes.jsonl").read_text().splitlines()]
    assert len(lines) == 60
    coco = json.loads((folder / "scenes" / "annotations.json").read_text())
    hits = 0
    for image, line in zip(coco["images"], lines):
        assert line["image"].endswith(image["file_name"])
        truth = [a["bbox"] for a in coco["annotations"] if a["image_id"] == image["id"]]
        confident = [b["box"] for b in line["objects"] if b["score"] >= 0.3]
        for x, y, w, h in truth:  # a confident box within 3 px of each true box, in the file's own pixels
            hits += any(max(abs(b[0] - x), abs(b[1] - y), abs(b[2] - x - w), abs(b[3] - y - h)) <= 3
                        for b in confident)
    assert hits >= 0.5 * len(coco["annotations"]), (hits, len(coco["annotations"]))


def test_onnx_network_with_python_decoding_matches_pytorch(detector: dict) -> None:
    import lamina
    from lamina.export import load

    folder, model = detector["folder"], detector["model"]
    assert_ok(run_cli("export", "runs/digits", "--data", "scenes/annotations.json", cwd=folder))
    frame = read_table(folder / "scenes" / "annotations.json").iloc[:12]
    torch_boxes = load(model, "torch").predict(frame)["objects"]
    onnx_boxes = load(model, "onnx").predict(frame)["objects"]
    for a, b in zip(torch_boxes, onnx_boxes):
        assert [x["label"] for x in a] == [x["label"] for x in b]
        assert np.allclose([x["box"] for x in a], [x["box"] for x in b], atol=0.15)
        assert np.allclose([x["score"] for x in a], [x["score"] for x in b], atol=2e-4)


def test_hog_svm_counterpart_is_scored_with_the_same_map(detector: dict) -> None:
    import lamina

    predictor = lamina.load(detector["model"])
    frame = read_table(detector["folder"] / "scenes" / "annotations.json")
    output = predictor.preprocessor.outputs[0]
    rows = output.classical_counterparts(predictor.preprocessor.inputs, {"train": frame.iloc[:24],
                                                                        "test": frame.iloc[40:48]})
    assert rows[0]["model"].startswith("HOG + linear SVM")
    found = rows[0]["metrics"]
    assert found["rows"] == 8 and set(found) >= {"map50", "map", "ap50_0"}
    assert 0.2 < found["map50"] <= 1.0, found  # a real detector: far above chance


def test_a_bad_box_stops_init_with_one_line(detector: dict, tmp_path: Path) -> None:
    write_coco(tmp_path / "bad", images=3)
    path = tmp_path / "bad" / "annotations.json"
    coco = json.loads(path.read_text())
    coco["annotations"][1]["bbox"] = [50, 30, 30, 30]
    path.write_text(json.dumps(coco))
    assert_user_error(run_cli("init", str(path), "--target", "objects", cwd=tmp_path), "annotations.json",
                      "annotation 2", "outside its 64x48 image")


@pytest.mark.slow
def test_the_page_draws_the_boxes_on_the_uploaded_picture(detector: dict) -> None:
    picture = detector["folder"] / "scenes" / "images" / "001.png"
    server = Server(detector["model"])
    try:
        with picture.open("rb") as handle:
            answer = httpx.post(server.url + "/predict", files={"image": ("001.png", handle, "image/png")}).json()
        boxes = answer["predictions"][0]["objects"]["prediction"]
        shown = sum(b["score"] >= 0.3 for b in boxes)
        assert shown >= 1, boxes
        with page_of(server) as (page, errors):
            page.set_input_files("input[name=image]", str(picture))
            page.click("#submit")
            page.wait_for_selector("#result canvas.boxes[data-drawn=true]", timeout=15000)
            assert page.get_attribute("#result canvas.boxes", "data-boxes") == str(shown)
            assert page.locator("#result .box-list li").count() == shown
            # red box outlines were drawn on the picture (a grey image has no red of its own)
            red = page.evaluate("""() => { const c = document.querySelector('#result canvas.boxes');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 120) n++; return n; }""")
            assert red > 20, red
            assert not errors, errors
    finally:
        server.stop()
