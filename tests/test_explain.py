"""Explanations and layer probes on real data: Integrated Gradients' completeness, sensible top features, the deletion
check (top-attributed columns hurt more than random ones), categories attributed at their embedding, files written,
and linear probes per hidden layer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from conftest import generated_config, set_input_type

import lamina
from lamina import explain, probes


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory, cancer_csv: Path) -> tuple[lamina.Predictor, Path]:
    folder = tmp_path_factory.mktemp("explain_cancer")
    config = generated_config(cancer_csv, ["diagnosis"], folder / "config.yaml", epochs=15, patience=5,
                              batch_size=64, name="cancer")
    model = lamina.train(config, output=folder / "model", verbose=False, report=False)
    return model, folder / "model"


def test_attributions_sum_to_the_change_in_probability(cancer, cancer_frame: pd.DataFrame) -> None:
    model, _ = cancer
    rows = cancer_frame.iloc[:40]
    result = explain.explain_rows(model, rows)
    json.dumps(result)  # the contract POST /explain returns as JSON
    assert result["score"] == "P(diagnosis = malignant)"
    inputs = [c for c in cancer_frame.columns if c != "diagnosis"]
    proba = model.predict(rows)["diagnosis_proba_malignant"].to_numpy()
    for row, p in zip(result["explanations"], proba):
        assert list(row["attributions"]) == inputs
        assert row["score"] == pytest.approx(p, abs=1e-5)
        # completeness: the attributions account for the whole move from the baseline's prediction to the row's
        assert sum(row["attributions"].values()) == pytest.approx(row["score"] - row["baseline_score"], abs=0.02)
    # the baseline (every number at its training mean) is one point: the same prediction for every row
    assert np.ptp([r["baseline_score"] for r in result["explanations"]]) < 1e-6


def test_top_columns_are_the_informative_ones(cancer, cancer_frame: pd.DataFrame) -> None:
    model, _ = cancer
    result = explain.explain_rows(model, cancer_frame.sample(200, random_state=1))
    ranked = sorted(explain.global_attributions(result).items(), key=lambda kv: -kv[1])
    truth = cancer_frame["diagnosis"] == "malignant"
    separation = {c: abs(skm.roc_auc_score(truth, cancer_frame[c]) - 0.5) for c, _ in ranked}
    top, bottom = [c for c, _ in ranked[:5]], [c for c, _ in ranked[-5:]]
    # what the model leans on separates the classes on its own far better than what it ignores
    assert np.mean([separation[c] for c in top]) > np.mean([separation[c] for c in bottom]) + 0.1, ranked
    assert sum(c.startswith("worst") or "concave" in c for c in top) >= 2, top


def test_deleting_top_attributed_columns_hurts_more_than_random(cancer, cancer_frame: pd.DataFrame) -> None:
    model, _ = cancer
    check = explain.faithfulness(model, cancer_frame, fraction=0.1)
    assert check["deleted"] == "3 of 30 columns"
    assert check["original"] > 0.9
    assert check["top_deleted"] < check["random_deleted"] - 0.03, check


def test_permutation_importance(cancer, cancer_frame: pd.DataFrame) -> None:
    model, _ = cancer
    result = explain.permutation_importance(model, cancer_frame, repeats=2)
    assert result["metric"] == "roc_auc" and len(result["importance"]) == 30
    assert max(result["importance"].values()) > 0


def test_category_column_is_attributed_at_its_embedding(tmp_path: Path, default_csv: Path) -> None:
    config = generated_config(default_csv, ["default"], tmp_path / "config.yaml", epochs=3, patience=2,
                              batch_size=256, name="default_cat")
    set_input_type(config, "student", "category")
    model = lamina.train(config, output=tmp_path / "model", verbose=False, report=False)
    frame = pd.read_csv(default_csv).iloc[:300]
    result = explain.explain_rows(model, frame)
    rows = result["explanations"]
    assert set(rows[0]["attributions"]) == {"student", "balance", "income"}
    for row in rows:
        assert sum(row["attributions"].values()) == pytest.approx(row["score"] - row["baseline_score"], abs=0.02)
    mean = explain.global_attributions(result)
    assert max(mean, key=mean.get) == "balance"  # the balance is what predicts a default


def test_explain_and_layers_write_their_files(cancer, cancer_csv: Path, tmp_path: Path) -> None:
    _, model_dir = cancer
    paths = explain.explain(model_dir, cancer_csv, tmp_path / "explain", verbose=False)
    for key in ("json", "attributions", "permutation", "html"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0
    numbers = json.loads(paths["json"].read_text())
    assert numbers["faithfulness"]["top_deleted"] < numbers["faithfulness"]["random_deleted"]
    assert paths["attributions"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in paths["html"].read_text()
    layers = probes.layers(model_dir, cancer_csv, tmp_path / "layers", verbose=False)
    result = json.loads(layers["json"].read_text())
    assert list(result["layers"]) == ["encoded inputs", "hidden 1", "hidden 2"]
    assert result["layers"]["hidden 2"]["score"] > 0.9  # the last hidden layer separates the classes linearly
    assert len(result["layers"]["hidden 2"]["pca"][0]) == 2
    assert layers["pca"].is_file() and layers["probes"].is_file()
