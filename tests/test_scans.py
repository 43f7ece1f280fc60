"""Medical scans end to end on the generated DICOM phantoms (examples/scans/make_data.py --small): ``lamina init``
infers an image input and a mask target from a folder of images/ beside masks/ and from a CSV, ``lamina train``
prints Dice and IoU per class and writes the report's overlays, ``lamina predict`` writes a mask PNG per scan and a
CSV of lesions, and ``lamina export`` checks ONNX against PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import assert_ok, edit_config, example, read_yaml, run_cli

pytest.importorskip("pydicom")
pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantoms") / "scans"
    example("scans").main(["--small", "--cases", "20", "--out", str(out)])
    return out


def test_the_phantoms_are_dicom_ct_with_exact_masks(scans: Path) -> None:
    import pydicom

    table = pd.read_csv(scans / "scans.csv")
    assert len(table) == 20 and list(table.columns) == ["image", "lesion_mask"]
    ds = pydicom.dcmread(scans / table["image"].iloc[0])
    assert ds.Modality == "CT" and float(ds.RescaleIntercept) == -1024 and ds.pixel_array.dtype == np.uint16
    masks = np.stack([np.asarray(Image.open(scans / m)) for m in table["lesion_mask"]])
    assert set(np.unique(masks)) == {0, 1} and 0 < (masks.reshape(20, -1).max(1) == 0).sum() < 20  # some healthy


@pytest.mark.slow
def test_init_train_predict_export_on_dicom_scans(scans: Path, tmp_path: Path) -> None:
    assert_ok(run_cli("init", scans / "scans.csv", "--target", "lesion_mask", "-o", tmp_path / "csv.yaml",
                      cwd=tmp_path))
    assert read_yaml(tmp_path / "csv.yaml")["outputs"] == [{"name": "lesion_mask", "type": "mask"}]
    assert_ok(run_cli("init", scans, "--target", "masks", "-o", tmp_path / "generated.yaml", cwd=tmp_path))
    generated = read_yaml(tmp_path / "generated.yaml")
    assert generated["inputs"] == [{"name": "image", "type": "image"}]
    assert generated["outputs"] == [{"name": "masks", "type": "mask"}]
    config = edit_config(tmp_path / "generated.yaml", tmp_path / "config.yaml", epochs=2, batch_size=8)
    trained = assert_ok(run_cli("train", config, "-o", tmp_path / "run", cwd=tmp_path))
    for metric in ("dice_1", "iou_1", "hausdorff95", "lesion_sensitivity", "lesion_fp_per_image",
                   "abnormality_roc_auc"):
        assert metric in trained.stdout, trained.stdout
    assert "Green: the true mask; red: the predicted one" in (tmp_path / "run" / "report.html").read_text("utf-8")
    assert_ok(run_cli("predict", tmp_path / "run", scans / "images", "-o", tmp_path / "out", cwd=tmp_path))
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert len(predictions) == 20 and {"image", "masks", "masks_abnormal_score"} <= set(predictions.columns)
    written = sorted((tmp_path / "out" / "masks").glob("*.png"))
    assert len(written) == 20 and np.asarray(Image.open(written[0])).shape == (32, 32)
    lesions = pd.read_csv(tmp_path / "out" / "masks_lesions.csv")
    assert list(lesions.columns) == ["image", "mask", "class", "lesion", "area_px", "centroid_x", "centroid_y"]
    assert (lesions.groupby("mask")["area_px"].sum().reindex([p.name for p in written], fill_value=0).to_numpy()
            == [int((np.asarray(Image.open(p)) > 0).sum()) for p in written]).all()
    from fastapi.testclient import TestClient

    from lamina.export import load
    from lamina.serve.app import create_app

    served = TestClient(create_app(load(tmp_path / "run")))
    with open(scans / "images" / "case_0000.dcm", "rb") as handle:
        answer = served.post("/predict", files={"image": ("case_0000.dcm", handle, "application/dicom")})
    assert answer.status_code == 200, answer.text
    entry = answer.json()["predictions"][0]["masks"]
    assert entry["prediction"] == predictions["masks"].iloc[0] and entry["mask"].startswith("data:image/png;base64,")
    assert "maskOverlay" in served.get("/").text
    exported = assert_ok(run_cli("export", tmp_path / "run", "--data", scans / "scans.csv", cwd=tmp_path))
    assert "ONNX Runtime matches PyTorch" in exported.stderr + exported.stdout
