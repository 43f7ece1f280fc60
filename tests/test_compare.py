"""The classical counterpart on the same split: breast cancer (LightGBM + logistic regression), a few dozen real
digits as PNG files (HOG + PCA + SVM), the table's rows, times and verdict, and the HOG features themselves."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import generated_config, read_yaml, write_yaml

from lamina import explain
from lamina.compare import compare, hog
from lamina.store import load


def test_cancer_deep_and_classical_on_the_same_test_rows(tmp_path: Path, cancer_csv: Path, capsys) -> None:
    config = generated_config(cancer_csv, ["diagnosis"], tmp_path / "config.yaml", epochs=10, patience=3,
                              batch_size=64, name="cancer_compare")
    paths = compare(config, output_dir=tmp_path / "runs")
    result = json.loads(paths["json"].read_text())
    models = {r["model"]: r for r in result["rows"]}
    assert set(models) == {"lamina (deep)", "lightgbm", "logistic"}
    deep = load(paths["run_dir"])
    rows = deep.metrics["test"]["diagnosis"]["rows"]
    assert rows == 85  # 15 % of 569, stratified
    for r in models.values():
        assert r["metrics"]["rows"] == rows and r["metric"] == "roc_auc"
        assert r["metric_value"] > 0.95 and r["train_seconds"] > 0 and r["predict_seconds"] > 0
        assert 0 < r["metrics"]["threshold"] < 1  # each model's decision threshold tuned on validation
    assert models["lamina (deep)"]["metrics"]["roc_auc"] == pytest.approx(deep.metrics["test"]["diagnosis"]["roc_auc"])
    verdict = result["verdicts"]["diagnosis"]
    assert verdict.startswith("On 'diagnosis' the deep model ") and "roc_auc" in verdict
    assert paths["chart"].read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "lightgbm" in printed and "logistic" in printed and verdict.split(" (")[0] in printed.replace("\n", " ")
    report = (paths["run_dir"] / "report.html").read_text()
    assert "lightgbm" in report and html.escape(verdict) in report


def write_digits(folder: Path, per_class: int) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    for d in range(10):
        for n in np.flatnonzero(digits.target == d)[:per_class]:
            path = folder / str(d) / f"{n:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.round(digits.images[n] * 255 / 16).astype(np.uint8), "L").save(path)


@pytest.fixture(scope="module")
def digits_compare(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("digits_compare")
    write_digits(folder / "digits", 20)
    config = read_yaml(Path(__file__).resolve().parents[1] / "examples" / "digits" / "config.yaml")
    config["data"]["path"] = str(folder / "digits")
    config["data"]["split"]["fractions"] = [0.6, 0.2, 0.2]
    config["inputs"][0]["options"].update(widths=[16, 32], depths=[1, 1])
    config["trainer"].update(epochs=15)
    return compare(write_yaml(config, folder / "config.yaml"), output_dir=folder / "runs", verbose=False)


def test_digits_hog_svm_on_the_same_test_images(digits_compare: dict[str, Path]) -> None:
    result = json.loads(digits_compare["json"].read_text())
    models = {r["model"]: r for r in result["rows"]}
    assert set(models) == {"lamina (deep)", "hog+pca+svm"}
    assert models["lamina (deep)"]["metrics"]["rows"] == models["hog+pca+svm"]["metrics"]["rows"] == 40
    assert models["hog+pca+svm"]["metrics"]["accuracy"] > 0.8  # HOG + SVM reads digits well even from 120 images
    assert models["lamina (deep)"]["metrics"]["accuracy"] > 0.3  # well above chance (0.1) after a short training
    assert "accuracy" in result["verdicts"]["label"]


def test_digit_saliency_is_faithful(digits_compare: dict[str, Path]) -> None:
    model = load(digits_compare["run_dir"])
    frame = model._frame(str(Path(digits_compare["run_dir"]).parent.parent / "digits"), None)[0]
    check = explain.faithfulness(model, frame, fraction=0.1)
    assert check["unit"] == "pixels" and check["deleted"] == "6 of 64 pixels of 'image'"
    assert check["top_deleted"] < check["random_deleted"] - 0.1, check
    rows = explain.explain_rows(model, frame.iloc[:3])["explanations"]
    assert np.asarray(rows[0]["saliency"]["image"]).shape == (8, 8)
    for row in rows:
        assert sum(row["attributions"].values()) == pytest.approx(row["score"] - row["baseline_score"], abs=0.03)


def test_hog_sees_edges_and_their_orientation() -> None:
    flat = np.full((1, 1, 16, 16), 128, np.uint8)
    assert np.allclose(hog(flat), 0)
    vertical = np.zeros((1, 1, 16, 16), np.uint8)
    vertical[..., 8:] = 255  # a vertical edge: horizontal gradient, orientation bin 0
    horizontal = np.swapaxes(vertical, 2, 3).copy()
    a, b = hog(vertical).reshape(-1, 9), hog(horizontal).reshape(-1, 9)
    assert hog(vertical).shape == (1, 3 * 3 * 4 * 9)
    assert a.sum(0).argmax() == 0 and b.sum(0).argmax() == 4  # 0° and 90° (bins of 20°)
