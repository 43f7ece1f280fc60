"""ONNX export: the network through ONNX Runtime gives PyTorch's predictions on the test split of real data, behind
the same preprocessing and decoding; stale or missing exports are refused with a clear message."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lamina.data.load import load_splits
from lamina.errors import LaminaError
from lamina.export import ONNX_FILE, export_onnx, load

TOLERANCE = 1e-4


def copy_model(model: Path, tmp_path: Path) -> Path:
    """A private copy of a session model, so writing model.onnx into it touches no other test's files."""
    return Path(shutil.copytree(model, tmp_path / model.name))


def split_test(model_dir: Path, base_dir: Path) -> pd.DataFrame:
    predictor = load(model_dir)
    frames, _ = load_splits(predictor.config, base_dir)
    return frames["test"]


def assert_same_predictions(torch_frame: pd.DataFrame, onnx_frame: pd.DataFrame, model_dir: Path) -> None:
    numbers = torch_frame.select_dtypes("number").columns
    assert len(numbers) >= 2  # the class probabilities
    difference = float((torch_frame[numbers] - onnx_frame[numbers]).abs().to_numpy().max())
    assert difference <= TOLERANCE, f"ONNX Runtime differs from PyTorch by {difference:.2e}"
    # Labels agree except, possibly, for a row whose probability sits on the decision threshold itself.
    predictor = load(model_dir)
    for output in predictor.preprocessor.outputs:
        differs = torch_frame[output.name] != onnx_frame[output.name]
        if differs.any():
            positive = f"{output.name}_proba_{output.state['classes'][1]}"
            gap = (torch_frame.loc[differs, positive] - output.state["threshold"]).abs()
            assert (gap <= TOLERANCE).all(), torch_frame[differs]


@pytest.mark.parametrize("which", ["default_category", "cancer"])
def test_onnx_predictions_equal_pytorch_on_the_test_split(which: str, request: pytest.FixtureRequest,
                                                          tmp_path: Path) -> None:
    if which == "cancer":
        source, base = request.getfixturevalue("cancer_model"), request.getfixturevalue("cancer_project")
    else:
        source = request.getfixturevalue("default_category_model")
        base = source.parent
    model_dir = copy_model(source, tmp_path)
    path = export_onnx(model_dir)
    assert path == model_dir / ONNX_FILE and path.is_file()
    assert not list(model_dir.glob(".*partial"))

    import onnx

    proto = onnx.load(str(path))
    names = [i.name for i in proto.graph.input]
    predictor = load(model_dir)
    categories = [t.name for t in predictor.preprocessor.inputs if t.kind == "category"]
    assert names == ["dense", *categories]  # one named input per batch key; 'student' is an embedding lookup
    assert (which == "default_category") == (categories == ["student"])
    assert [o.name for o in proto.graph.output] == [t.name for t in predictor.preprocessor.outputs]

    test = split_test(model_dir, base)
    torch_frame = load(model_dir, "torch").predict(test)
    onnx_model = load(model_dir, "onnx")
    assert onnx_model.info["runtime"] == "onnx"
    onnx_frame = onnx_model.predict(test)
    assert list(onnx_frame.columns) == list(torch_frame.columns)
    assert_same_predictions(torch_frame, onnx_frame, model_dir)

    # The batch axis is dynamic: one row, and more rows than one ONNX Runtime call takes.
    one = onnx_model.predict(test.iloc[:1])
    assert np.allclose(one.select_dtypes("number").to_numpy(), torch_frame.iloc[:1].select_dtypes("number").to_numpy(),
                       atol=TOLERANCE)
    many = pd.concat([test] * (5000 // len(test) + 1), ignore_index=True)
    assert len(onnx_model.predict(many)) == len(many)


def test_export_checks_against_given_rows_and_refuses_a_mismatch(default_category_model: Path, tmp_path: Path,
                                                                 default_frame: pd.DataFrame) -> None:
    model_dir = copy_model(default_category_model, tmp_path)
    rows = default_frame.head(50)
    with pytest.raises(LaminaError, match="differ from PyTorch"):
        export_onnx(model_dir, rows, tolerance=-1.0)  # nothing can pass: the export must not be written
    assert not (model_dir / ONNX_FILE).exists()
    assert not list(model_dir.glob(".*partial"))
    export_onnx(model_dir, rows)
    assert (model_dir / ONNX_FILE).is_file()


def test_missing_or_stale_export_is_refused(default_category_model: Path, tmp_path: Path) -> None:
    model_dir = copy_model(default_category_model, tmp_path)
    with pytest.raises(LaminaError, match="lamina export"):
        load(model_dir, "onnx")
    with pytest.raises(LaminaError, match="runtime 'tensorflow'"):
        load(model_dir, "tensorflow")
    export_onnx(model_dir)
    load(model_dir, "onnx")

    from safetensors.torch import load_file, save_file

    weights = load_file(str(model_dir / "weights.safetensors"))
    save_file({k: v + 0.01 if v.is_floating_point() else v for k, v in weights.items()},
              str(model_dir / "weights.safetensors"))
    with pytest.raises(LaminaError, match="export it again"):
        load(model_dir, "onnx")
    (model_dir / ONNX_FILE).write_bytes(b"not onnx")
    with pytest.raises(LaminaError, match="not a readable ONNX model"):
        load(model_dir, "onnx")
