"""Bad input, one case per test: each must end with exit code 2 and one line on stderr, ``error: ...``, that names the
file, column, row or key at fault and says what to do; never a traceback, never an ``internal error``.

Tests marked slow need the model the session trains once (see conftest.py); the others run no training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import (
    assert_ok, assert_user_error, edit_config, generated_config, read_yaml, run_cli, show, write_yaml,
)


@pytest.fixture(scope="module")
def default_config(tmp_path_factory: pytest.TempPathFactory, default_csv: Path) -> Path:
    """A short config for Default as `lamina init` writes it (student binary, balance and income numbers)."""
    folder = tmp_path_factory.mktemp("default_config")
    return generated_config(default_csv, ["default"], folder / "config.yaml", epochs=3, patience=1, batch_size=256)


@pytest.fixture
def cancer_config(tmp_path: Path, cancer_project: Path) -> Path:
    """A valid breast cancer config in this test's folder, with an absolute data path."""
    return edit_config(cancer_project / "config.yaml", tmp_path / "config.yaml", epochs=3, patience=1)


def with_data(config: Path, data: Path, target: Path) -> Path:
    """A copy of ``config`` reading ``data``."""
    raw = read_yaml(config)
    raw["data"]["path"] = str(data)
    return write_yaml(raw, target)


# --- data files ---------------------------------------------------------------------------------------------------


def test_missing_data_file(tmp_path: Path) -> None:
    result = run_cli("init", "nope.csv", "-t", "diagnosis", cwd=tmp_path)
    assert_user_error(result, "nope.csv", "no such file")
    assert not (tmp_path / "config.yaml").exists()


def test_config_pointing_at_a_missing_data_file(tmp_path: Path, cancer_config: Path) -> None:
    with_data(cancer_config, tmp_path / "moved.csv", cancer_config)
    assert_user_error(run_cli("train", cancer_config, cwd=tmp_path), str(tmp_path / "moved.csv"), "no such file")


def test_empty_data_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    message = assert_user_error(run_cli("init", "empty.csv", "-t", "diagnosis", cwd=tmp_path), "empty.csv")
    assert "empty" in message.removeprefix("error: empty.csv")


def test_header_only_csv(tmp_path: Path, cancer_csv: Path) -> None:
    header = cancer_csv.read_text().splitlines()[0]
    (tmp_path / "header.csv").write_text(header + "\n")
    assert_user_error(run_cli("init", "header.csv", "-t", "diagnosis", cwd=tmp_path), "header.csv", "no data rows")


def test_unparseable_csv(tmp_path: Path, cancer_csv: Path) -> None:
    lines = cancer_csv.read_text().splitlines()
    lines[5] = '"' + lines[5]  # a quote that never closes: the rest of the file is one field
    (tmp_path / "broken.csv").write_text("\n".join(lines) + "\n")
    message = assert_user_error(run_cli("init", "broken.csv", "-t", "diagnosis", cwd=tmp_path), "broken.csv")
    assert "line 6" in message and "quot" in message, message


def test_rows_with_too_many_fields(tmp_path: Path, cancer_csv: Path) -> None:
    lines = cancer_csv.read_text().splitlines()
    lines[10] += ",1.0,2.0"
    (tmp_path / "extra.csv").write_text("\n".join(lines) + "\n")
    result = run_cli("init", "extra.csv", "-t", "diagnosis", cwd=tmp_path)
    assert_user_error(result, "extra.csv", "line 11", "33 fields")


# --- targets ------------------------------------------------------------------------------------------------------


def test_init_with_a_target_that_does_not_exist(tmp_path: Path, cancer_csv: Path) -> None:
    result = run_cli("init", cancer_csv, "-t", "diagnosys", cwd=tmp_path)
    assert_user_error(result, str(cancer_csv), "'diagnosys'", "not found", "'mean radius'")


@pytest.fixture(scope="module")
def nan_target_csv(tmp_path_factory: pytest.TempPathFactory, default_frame: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("nan_target") / "nan_target.csv"
    default_frame.assign(default=np.nan).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def one_class_csv(tmp_path_factory: pytest.TempPathFactory, default_frame: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("one_class") / "one_class.csv"
    default_frame.assign(default="No").to_csv(path, index=False)
    return path


def test_init_target_all_missing(tmp_path: Path, nan_target_csv: Path) -> None:
    result = run_cli("init", nan_target_csv, "-t", "default", cwd=tmp_path)
    assert_user_error(result, "nan_target.csv", "'default'", "missing")


def test_train_target_all_missing(tmp_path: Path, default_config: Path, nan_target_csv: Path) -> None:
    config = with_data(default_config, nan_target_csv, tmp_path / "config.yaml")
    assert_user_error(run_cli("train", config, "-q", cwd=tmp_path), "nan_target.csv", "'default'")


def test_init_target_with_a_single_class(tmp_path: Path, one_class_csv: Path) -> None:
    result = run_cli("init", one_class_csv, "-t", "default", cwd=tmp_path)
    assert_user_error(result, "one_class.csv", "'default'", "'No'")


def test_train_target_with_a_single_class(tmp_path: Path, default_config: Path, one_class_csv: Path) -> None:
    config = with_data(default_config, one_class_csv, tmp_path / "config.yaml")
    assert_user_error(run_cli("train", config, "-q", cwd=tmp_path), "one_class.csv", "'default'", "'No'",
                      "two classes")


def test_a_failed_training_leaves_no_run_folder(tmp_path: Path, default_config: Path, one_class_csv: Path) -> None:
    config = with_data(default_config, one_class_csv, tmp_path / "config.yaml")
    assert_user_error(run_cli("train", config, "-q", "--output-dir", "runs", cwd=tmp_path), "two classes")
    leftovers = list((tmp_path / "runs").iterdir()) if (tmp_path / "runs").exists() else []
    assert leftovers == []  # no `<name>.incomplete/` with only a config in it


# --- values -------------------------------------------------------------------------------------------------------


def test_word_in_a_number_column_at_training(tmp_path: Path, default_config: Path, default_frame: pd.DataFrame) -> None:
    frame = default_frame.astype({"balance": object})
    frame.loc[17, "balance"] = "abc"  # data row 18 (line 19 of the file, after the header)
    frame.to_csv(tmp_path / "word.csv", index=False)
    config = with_data(default_config, tmp_path / "word.csv", tmp_path / "config.yaml")
    assert_user_error(run_cli("train", config, "-q", cwd=tmp_path), "word.csv", "'balance'", "row 18", "'abc'")


@pytest.mark.slow  # needs the session's trained model
def test_word_in_a_number_column_at_prediction(tmp_path: Path, cancer_model: Path, cancer_frame: pd.DataFrame) -> None:
    frame = cancer_frame.head(30).astype({"mean texture": object})
    frame.loc[4, "mean texture"] = "n/a?"
    frame.to_csv(tmp_path / "new.csv", index=False)
    assert_user_error(run_cli("predict", cancer_model, "new.csv", cwd=tmp_path),
                      "new.csv", "'mean texture'", "row 5", "'n/a?'")


@pytest.mark.slow  # needs the session's trained model
def test_predict_with_missing_columns(tmp_path: Path, cancer_model: Path, cancer_frame: pd.DataFrame) -> None:
    cancer_frame.drop(columns=["mean radius", "worst area"]).to_csv(tmp_path / "new.csv", index=False)
    assert_user_error(run_cli("predict", cancer_model, "new.csv", cwd=tmp_path),
                      "new.csv", "'mean radius'", "'worst area'", "not found")


@pytest.mark.slow  # needs the session's trained model
def test_evaluate_without_the_target_column(tmp_path: Path, cancer_model: Path, cancer_frame: pd.DataFrame) -> None:
    cancer_frame.drop(columns=["diagnosis"]).to_csv(tmp_path / "unlabelled.csv", index=False)
    assert_user_error(run_cli("evaluate", cancer_model, "unlabelled.csv", cwd=tmp_path),
                      "unlabelled.csv", "'diagnosis'", "not found")


@pytest.mark.slow  # needs the session's trained model
def test_predict_keep_column_that_does_not_exist(tmp_path: Path, cancer_model: Path, cancer_csv: Path) -> None:
    assert_user_error(run_cli("predict", cancer_model, cancer_csv, "--keep", "patient_id", cwd=tmp_path),
                      "--keep", "'patient_id'")


@pytest.mark.slow  # needs the session's trained model
def test_predict_keep_column_named_like_a_prediction(tmp_path: Path, cancer_model: Path, cancer_csv: Path) -> None:
    # Keeping the label next to the prediction: both columns would be called 'diagnosis'.
    assert_user_error(run_cli("predict", cancer_model, cancer_csv, "-k", "diagnosis", "-o", "p.csv", cwd=tmp_path),
                      "--keep", "'diagnosis'")
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.slow
def test_unseen_category_is_a_warning_not_an_error(tmp_path: Path, default_category_model: Path,
                                                   default_frame: pd.DataFrame) -> None:
    frame = default_frame.drop(columns=["default"]).head(200).copy()
    frame.loc[[3, 10], "student"] = "Maybe"
    frame.to_csv(tmp_path / "new.csv", index=False)
    result = assert_ok(run_cli("predict", default_category_model, "new.csv", "-o", "preds.csv", cwd=tmp_path))
    assert "error" not in result.stderr.lower(), show(result)
    warnings = [line for line in result.stderr.splitlines() if "student" in line]
    assert warnings and "warning" in warnings[0].lower() and "Maybe" in warnings[0], show(result)
    preds = pd.read_csv(tmp_path / "preds.csv")
    assert len(preds) == 200
    np.testing.assert_allclose(preds[["default_proba_No", "default_proba_Yes"]].sum(axis=1), 1.0, atol=1e-9)


# --- model directories --------------------------------------------------------------------------------------------


@pytest.fixture
def model_copy(tmp_path: Path, cancer_model: Path) -> Path:
    return Path(shutil.copytree(cancer_model, tmp_path / "model"))


@pytest.mark.slow  # needs the session's trained model
def test_garbage_lamina_json(tmp_path: Path, model_copy: Path, cancer_csv: Path) -> None:
    (model_copy / "lamina.json").write_text("{ this is not json")
    assert_user_error(run_cli("predict", model_copy, cancer_csv, cwd=tmp_path), "lamina.json", "corrupted")


@pytest.mark.slow  # needs the session's trained model
def test_lamina_json_without_fitted_state(tmp_path: Path, model_copy: Path, cancer_csv: Path) -> None:
    info = json.loads((model_copy / "lamina.json").read_text())
    del info["preprocessor"]["inputs"]["mean radius"]  # valid JSON, but a column's fitted state is gone
    (model_copy / "lamina.json").write_text(json.dumps(info))
    assert_user_error(run_cli("predict", model_copy, cancer_csv, cwd=tmp_path), "lamina.json", "'mean radius'")


@pytest.mark.slow  # needs the session's trained model
def test_truncated_weights(tmp_path: Path, model_copy: Path, cancer_csv: Path) -> None:
    weights = model_copy / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert_user_error(run_cli("evaluate", model_copy, cancer_csv, cwd=tmp_path), "weights.safetensors", "corrupted")


def test_folder_that_is_not_a_model_directory(tmp_path: Path, cancer_csv: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    assert_user_error(run_cli("predict", "notes", cancer_csv, cwd=tmp_path), "notes", "lamina.json is missing")


def test_model_directory_that_does_not_exist(tmp_path: Path, cancer_csv: Path) -> None:
    assert_user_error(run_cli("predict", "runs/nothing", cancer_csv, cwd=tmp_path), "runs/nothing", "no such model")


# --- configs ------------------------------------------------------------------------------------------------------


def test_config_unknown_key_lists_allowed_keys(tmp_path: Path, cancer_config: Path) -> None:
    raw = read_yaml(cancer_config)
    raw["trainer"]["epocs"] = 5
    write_yaml(raw, cancer_config)
    message = assert_user_error(run_cli("train", cancer_config, cwd=tmp_path), "config.yaml", "trainer.epocs")
    assert "allowed" in message and "epochs" in message and "learning_rate" in message, message


def test_config_bad_enum_value_lists_allowed_values(tmp_path: Path, cancer_config: Path) -> None:
    raw = read_yaml(cancer_config)
    raw["trainer"]["schedule"] = "linear"
    write_yaml(raw, cancer_config)
    assert_user_error(run_cli("train", cancer_config, cwd=tmp_path),
                      "config.yaml", "trainer.schedule", "'linear'", "cosine", "onecycle", "constant")


def test_config_unknown_input_type(tmp_path: Path, cancer_config: Path) -> None:
    raw = read_yaml(cancer_config)
    raw["inputs"][1]["type"] = "decimal"
    write_yaml(raw, cancer_config)
    assert_user_error(run_cli("train", cancer_config, cwd=tmp_path),
                      "config.yaml", "mean texture", "'decimal'", "number", "category", "binary")


def test_config_unknown_option_for_a_type(tmp_path: Path, cancer_config: Path) -> None:
    raw = read_yaml(cancer_config)
    raw["inputs"][0]["options"] = {"scaling": "log"}
    write_yaml(raw, cancer_config)
    assert_user_error(run_cli("train", cancer_config, cwd=tmp_path),
                      "config.yaml", "mean radius", "'scaling'", "normalization")


def test_config_bad_yaml_names_the_line(tmp_path: Path, cancer_config: Path) -> None:
    lines = cancer_config.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("width:"))
    lines[at] += ": 3"  # 'width: 128: 3'
    cancer_config.write_text("\n".join(lines) + "\n")
    assert_user_error(run_cli("train", cancer_config, cwd=tmp_path), "config.yaml", "YAML", f"line {at + 1}")


def test_empty_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("")
    assert_user_error(run_cli("train", "config.yaml", cwd=tmp_path), "config.yaml", "empty", "lamina init")


def test_missing_config_file(tmp_path: Path) -> None:
    assert_user_error(run_cli("train", "nothing.yaml", cwd=tmp_path), "nothing.yaml", "lamina init")


def test_init_refuses_to_overwrite_without_force(tmp_path: Path, cancer_csv: Path) -> None:
    (tmp_path / "config.yaml").write_text("# my edits\n")
    assert_user_error(run_cli("init", cancer_csv, "-t", "diagnosis", cwd=tmp_path), "config.yaml", "--force")
    assert (tmp_path / "config.yaml").read_text() == "# my edits\n"
    assert_ok(run_cli("init", cancer_csv, "-t", "diagnosis", "--force", cwd=tmp_path))
    assert read_yaml(tmp_path / "config.yaml")["outputs"][0]["name"] == "diagnosis"
