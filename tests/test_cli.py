"""The ``lamina`` command end to end, as a user runs it: init, train, evaluate, predict, runs, on real data."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file

from conftest import assert_ok, edit_config, read_yaml, run_cli, show

SUBCOMMANDS = ("init", "train", "evaluate", "predict", "runs")


def columns_of(config: dict, section: str) -> dict[str, str]:
    return {spec["name"]: spec["type"] for spec in config[section]}


# --- help ---------------------------------------------------------------------------------------------------------


def test_help_lists_every_subcommand(tmp_path: Path) -> None:
    result = assert_ok(run_cli("--help", cwd=tmp_path))
    for name in SUBCOMMANDS:
        assert name in result.stdout, show(result)


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_subcommand_help(tmp_path: Path, subcommand: str) -> None:
    result = assert_ok(run_cli(subcommand, "--help", cwd=tmp_path))
    assert "Usage" in result.stdout, show(result)


# --- init ---------------------------------------------------------------------------------------------------------


def test_init_types_breast_cancer_columns(tmp_path: Path, cancer_csv: Path, cancer_frame: pd.DataFrame) -> None:
    result = assert_ok(run_cli("init", cancer_csv, "-t", "diagnosis", "-o", "config.yaml", cwd=tmp_path))
    assert "config.yaml" in result.stdout and "lamina train" in result.stdout, show(result)
    config = read_yaml(tmp_path / "config.yaml")
    features = [c for c in cancer_frame.columns if c != "diagnosis"]
    assert len(features) == 30
    assert columns_of(config, "inputs") == {c: "number" for c in features}
    assert columns_of(config, "outputs") == {"diagnosis": "binary"}
    assert config["name"] == "breast_cancer"
    # The data path is relative to the config, so the project folder can move.
    assert (tmp_path / config["data"]["path"]).resolve() == cancer_csv.resolve()


def test_init_types_default_columns_and_skips_row_numbers(tmp_path: Path, default_csv: Path) -> None:
    result = assert_ok(run_cli("init", default_csv, "--target", "default", "-o", "config.yaml", cwd=tmp_path))
    assert "rownames" in result.stdout, show(result)  # says which column it left out, and why
    text = (tmp_path / "config.yaml").read_text(encoding="utf-8")
    config = read_yaml(tmp_path / "config.yaml")
    assert columns_of(config, "inputs") == {"student": "binary", "balance": "number", "income": "number"}
    assert columns_of(config, "outputs") == {"default": "binary"}
    assert "# left out 'rownames'" in text
    assert config["data"]["split"]["method"] == "stratified"


# --- train --------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_prints_metrics_and_writes_a_whole_model_directory(
    cancer_training: subprocess.CompletedProcess[str], cancer_model: Path, cancer_project: Path
) -> None:
    out = cancer_training.stdout
    for word in ("diagnosis", "roc_auc", "accuracy", "train", "validation", "test", "model directory"):
        assert word in out, show(cancer_training)
    assert "runs/breast_cancer" in out, show(cancer_training)

    names = {p.name for p in cancer_model.iterdir()}
    assert {"lamina.json", "weights.safetensors", "metrics.jsonl", "config.yaml"} <= names
    assert not [n for n in names if "checkpoint" in n or n.startswith(".")], names
    assert not list((cancer_project / "runs").glob("*.incomplete")), "a finished run leaves no .incomplete folder"

    info = json.loads((cancer_model / "lamina.json").read_text(encoding="utf-8"))
    assert info["format"] == "lamina-model"
    assert info["metrics"]["test"]["diagnosis"]["roc_auc"] > 0.95
    epochs = [json.loads(line)["epoch"] for line in (cancer_model / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, len(epochs) + 1)) and 1 <= len(epochs) <= 10
    assert info["epochs_run"] == len(epochs)
    saved = read_yaml(cancer_model / "config.yaml")  # the config the model was trained with, defaults filled in
    assert [(s["name"], s["type"]) for s in saved["outputs"]] == [("diagnosis", "binary")]
    assert saved["trainer"]["epochs"] == 10


@pytest.mark.slow
def test_second_training_of_a_config_gets_a_numbered_directory(tmp_path: Path, cancer_project: Path,
                                                               cancer_csv: Path) -> None:
    project = tmp_path
    edit_config(cancer_project / "config.yaml", project / "config.yaml", epochs=5, patience=2, batch_size=128)
    first = assert_ok(run_cli("train", "config.yaml", "-q", cwd=project))
    second = assert_ok(run_cli("train", "config.yaml", "-q", cwd=project))
    assert "runs/breast_cancer " in first.stdout or first.stdout.rstrip().endswith("runs/breast_cancer"), show(first)
    assert "runs/breast_cancer-2" in second.stdout, show(second)
    runs = sorted(p.name for p in (project / "runs").iterdir())
    assert runs == ["breast_cancer", "breast_cancer-2"]
    # Same config, same seed: the same model twice.
    a, b = (json.loads((project / "runs" / r / "lamina.json").read_text())["metrics"] for r in runs)
    assert a == b
    listed = assert_ok(run_cli("runs", cwd=project))
    lines = listed.stdout.splitlines()
    assert any("breast_cancer-2" in line for line in lines), show(listed)
    assert any("breast_cancer" in line and "breast_cancer-2" not in line for line in lines), show(listed)


# --- evaluate, predict, runs --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_evaluate_prints_roc_auc(cancer_model: Path, cancer_csv: Path, tmp_path: Path) -> None:
    result = assert_ok(run_cli("evaluate", cancer_model, cancer_csv, "--json", "metrics.json", cwd=tmp_path))
    assert "roc_auc" in result.stdout and "diagnosis" in result.stdout, show(result)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["diagnosis"]["rows"] == 569
    assert metrics["diagnosis"]["roc_auc"] > 0.95
    assert f"{metrics['diagnosis']['roc_auc']:.4f}" in result.stdout


@pytest.mark.slow
def test_predict_writes_one_row_per_input_with_probabilities(cancer_model: Path, cancer_csv: Path,
                                                             cancer_frame: pd.DataFrame, tmp_path: Path) -> None:
    result = assert_ok(run_cli("predict", cancer_model, cancer_csv, "-o", "preds.csv", cwd=tmp_path))
    assert "569" in result.stderr, show(result)
    preds = pd.read_csv(tmp_path / "preds.csv")
    assert len(preds) == len(cancer_frame)
    assert list(preds.columns) == ["diagnosis", "diagnosis_proba_benign", "diagnosis_proba_malignant"]
    proba = preds[["diagnosis_proba_benign", "diagnosis_proba_malignant"]].to_numpy()
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert set(preds["diagnosis"]) <= {"benign", "malignant"}
    assert (preds["diagnosis"] == cancer_frame["diagnosis"]).mean() > 0.9


@pytest.mark.slow
def test_predict_keeps_columns_and_writes_csv_to_stdout(cancer_model: Path, cancer_csv: Path,
                                                        cancer_frame: pd.DataFrame, tmp_path: Path) -> None:
    result = assert_ok(run_cli("predict", cancer_model, cancer_csv, "--keep", "mean radius", cwd=tmp_path))
    (tmp_path / "stdout.csv").write_text(result.stdout)
    preds = pd.read_csv(tmp_path / "stdout.csv")
    assert list(preds.columns) == ["mean radius", "diagnosis", "diagnosis_proba_benign", "diagnosis_proba_malignant"]
    assert len(preds) == len(cancer_frame)
    np.testing.assert_allclose(preds["mean radius"], cancer_frame["mean radius"])


@pytest.mark.slow
def test_predict_keep_id_column(cancer_model: Path, tmp_path: Path, cancer_frame: pd.DataFrame) -> None:
    frame = cancer_frame.drop(columns=["diagnosis"]).head(40)
    frame.insert(0, "patient_id", [f"P{i:04d}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "new.csv", index=False)
    assert_ok(run_cli("predict", cancer_model, "new.csv", "--keep", "patient_id", "-o", "out.parquet", cwd=tmp_path))
    preds = pd.read_parquet(tmp_path / "out.parquet")
    assert list(preds.columns) == ["patient_id", "diagnosis", "diagnosis_proba_benign", "diagnosis_proba_malignant"]
    assert preds["patient_id"].tolist() == frame["patient_id"].tolist()


@pytest.mark.slow
def test_runs_lists_the_model(cancer_model: Path, cancer_project: Path) -> None:
    result = assert_ok(run_cli("runs", cwd=cancer_project))
    assert "breast_cancer" in result.stdout, show(result)
    assert "test" in result.stdout, show(result)


def test_runs_in_an_empty_folder(tmp_path: Path) -> None:
    result = assert_ok(run_cli("runs", cwd=tmp_path))
    assert "no model directories" in result.stdout, show(result)


# --- two outputs --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_outputs_train_and_evaluate(tmp_path: Path, default_csv: Path) -> None:
    init = assert_ok(run_cli("init", default_csv, "-t", "default", "-t", "balance", "--name", "two", cwd=tmp_path))
    assert "default (binary)" in init.stdout and "balance (number)" in init.stdout, show(init)
    config = read_yaml(tmp_path / "config.yaml")
    assert columns_of(config, "outputs") == {"default": "binary", "balance": "number"}
    assert columns_of(config, "inputs") == {"student": "binary", "income": "number"}
    edit_config(tmp_path / "config.yaml", epochs=6, patience=2, batch_size=256)

    assert_ok(run_cli("train", "config.yaml", "-q", cwd=tmp_path))
    model = tmp_path / "runs" / "two"
    info = json.loads((model / "lamina.json").read_text())
    assert set(info["metrics"]["test"]) == {"default", "balance"}

    result = assert_ok(run_cli("evaluate", model, default_csv, "--json", "m.json", cwd=tmp_path))
    for word in ("default", "balance", "roc_auc", "rmse", "r2"):
        assert word in result.stdout, show(result)
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert set(metrics) == {"default", "balance"}
    assert metrics["balance"]["rows"] == metrics["default"]["rows"] == 10_000
    assert np.isfinite(metrics["balance"]["rmse"]) and 0 <= metrics["default"]["roc_auc"] <= 1

    assert_ok(run_cli("predict", model, default_csv, "-o", "p.csv", cwd=tmp_path))
    preds = pd.read_csv(tmp_path / "p.csv")
    assert list(preds.columns) == ["default", "default_proba_No", "default_proba_Yes", "balance"]
    assert len(preds) == 10_000


# --- what a model directory is made of ----------------------------------------------------------------------------


@pytest.mark.slow
def test_model_directory_holds_no_pickle(cancer_model: Path) -> None:
    files = [p for p in cancer_model.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"lamina.json", "weights.safetensors"}
    assert not [p for p in files if p.suffix in (".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib", ".ckpt")]
    for path in files:
        head = path.read_bytes()[:8]
        assert not head.startswith(b"PK\x03\x04"), f"{path.name} is a zip archive (torch.save's format)"
        if head.startswith(b"\x80"):  # pickle protocol 2+ starts with 0x80...
            # ...and so may a safetensors file, whose first 8 bytes are its header length: then the header must parse.
            assert path.suffix == ".safetensors", f"{path.name} starts like a pickle"
            assert_safetensors(path)

    info = json.loads((cancer_model / "lamina.json").read_text(encoding="utf-8"))
    assert isinstance(info, dict) and info["format"] == "lamina-model"
    header = assert_safetensors(cancer_model / "weights.safetensors")
    weights = load_file(str(cancer_model / "weights.safetensors"))
    assert weights and set(weights) == {k for k in header if k != "__metadata__"}
    assert all(w.dtype.is_floating_point for w in weights.values())


def assert_safetensors(path: Path) -> dict:
    """A safetensors file is an 8-byte little-endian header length, a JSON header, then raw tensor bytes."""
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    assert 0 < length < len(raw), path.name
    header = json.loads(raw[8:8 + length])
    assert isinstance(header, dict), path.name
    return header
