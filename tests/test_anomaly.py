"""task: anomaly -- unlabelled rows, an autoencoder or Deep SVDD score per row, thresholds by alert budget, validation
quantile or an extreme-value tail fit, classical detectors beside it, labels used only to evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import assert_ok, example, read_yaml, run_cli, write_yaml
from lamina.anomaly.networks import AutoEncoder, DeepSVDD, scores
from lamina.anomaly.thresholds import pot, threshold
from lamina.config import AnomalyConfig, Config
from lamina.errors import LaminaError
from lamina.store import load


def test_thresholds_by_budget_quantile_and_tail_fit() -> None:
    rng = np.random.default_rng(0)
    values = rng.exponential(1.0, 20_000)
    assert np.mean(values > threshold(values, AnomalyConfig(threshold="budget", alert_budget=0.05))) == pytest.approx(0.05, abs=1e-3)
    assert threshold(values, AnomalyConfig(threshold="quantile", quantile=0.9)) == pytest.approx(np.quantile(values, 0.9))
    # an exponential tail is a generalised Pareto one with shape 0: the fit extrapolates past the rows it saw
    assert pot(values, 0.98, 1e-5) == pytest.approx(-np.log(1e-5), rel=0.15)


@pytest.mark.parametrize("make", [lambda: AutoEncoder(6, [16], 2), lambda: DeepSVDD(6, [16], 4)],
                         ids=["autoencoder", "deep_svdd"])
def test_a_detector_learns_what_normal_rows_look_like(make) -> None:
    torch.manual_seed(0)  # before the network is built: its initial weights are part of what the test fixes
    network = make()
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 6))  # normal rows lie on a plane in 6 dimensions; outliers off it
    normal = (rng.normal(size=(2000, 2)) @ basis).astype(np.float32)
    outliers = rng.normal(scale=2.0, size=(50, 6)).astype(np.float32)
    x = torch.from_numpy(normal)
    if isinstance(network, DeepSVDD):
        network.set_center(x)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        network.score(x[torch.randint(0, 2000, (256,))]).mean().backward()
        optimizer.step()
    inside = scores(network, torch.from_numpy(normal[:500])).numpy()
    outside = scores(network, torch.from_numpy(outliers)).numpy()
    assert np.mean(outside > np.quantile(inside, 0.95)) > 0.8


def test_an_anomaly_config_has_inputs_and_no_outputs() -> None:
    config = Config.model_validate({"task": "anomaly", "inputs": [{"name": "a", "type": "number"}]})
    assert config.anomaly is not None and config.anomaly.method == "autoencoder"
    with pytest.raises(ValueError, match="outputs are not used with task 'anomaly'"):
        Config.model_validate({"task": "anomaly", "inputs": [{"name": "a", "type": "number"}],
                               "outputs": [{"name": "y", "type": "binary"}]})
    with pytest.raises(ValueError, match="train_on 'normal' needs label"):
        AnomalyConfig(train_on="normal")


@pytest.fixture(scope="module")
def transactions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    fraud = example("fraud")
    path = tmp_path_factory.mktemp("anomaly") / "transactions.csv"
    fraud.sample(fraud.transactions(), 1500, seed=1).drop(columns=["Time"]).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_anomaly_task_end_to_end(transactions: Path, tmp_path: Path) -> None:
    result = assert_ok(run_cli("init", transactions, "--task", "anomaly", "--target", "Class", "-o", "config.yaml",
                               cwd=tmp_path))
    assert "label 'Class' for evaluation" in result.stdout
    config = read_yaml(tmp_path / "config.yaml")
    assert config["task"] == "anomaly" and "Class" not in [s["name"] for s in config["inputs"]]
    config["data"]["path"] = str(transactions)
    config["anomaly"].update(method="deep_svdd", train_on="normal", threshold="pot",
                             costs={"missed": 100, "false_alarm": 1})
    config["trainer"].update(epochs=6)
    write_yaml(config, tmp_path / "config.yaml")
    # compare trains the model as train does (its model directory and report), then the detectors beside it
    result = assert_ok(run_cli("compare", "config.yaml", "--output-dir", "runs", cwd=tmp_path))
    folder = tmp_path / "runs" / "transactions"
    info = json.loads((folder / "lamina.json").read_text())
    test = info["metrics"]["test"]
    assert set(test) == {"deep_svdd", "isolation_forest", "lof", "knn"}
    assert test["deep_svdd"]["roc_auc"] > 0.85 and test["deep_svdd"]["anomalies"] > 0
    assert test["deep_svdd"]["expected_cost"] < test["deep_svdd"]["expected_cost_no_alerts"]
    assert info["metrics"]["train"]["deep_svdd"]["anomalies"] == 0  # train_on: normal left the frauds out
    compared = json.loads((folder / "compare.json").read_text())
    assert [r["model"] for r in compared["rows"]] == ["lamina (deep)", "isolation_forest", "lof", "knn"]
    # the same split and metrics as training's own evaluation of the detectors
    for row in compared["rows"][1:]:
        assert row["metrics"]["roc_auc"] == pytest.approx(test[row["model"]]["roc_auc"])
    interval = compared["noise"]["Class"]
    assert interval["low"] <= interval["difference"] <= interval["high"] and interval["metric"] == "roc_auc"
    assert "paired bootstrap" in result.stdout
    page = (folder / "report.html").read_text(encoding="utf-8")
    for needle in ("score distributions, PR curve, cost curve", "Comparison with classical models", "isolation_forest"):
        assert needle in page, needle
    model = load(folder)
    frame = pd.read_csv(transactions)
    predicted = model.predict(frame)
    assert list(predicted.columns) == ["anomaly_score", "anomaly"] and len(predicted) == len(frame)
    assert predicted["anomaly_score"][frame["Class"] == 1].median() > predicted["anomaly_score"][frame["Class"] == 0].quantile(0.9)
    assert_ok(run_cli("predict", folder, transactions, "-o", "scores.csv", cwd=tmp_path))
    assert pd.read_csv(tmp_path / "scores.csv")["anomaly_score"].to_numpy() == pytest.approx(
        predicted["anomaly_score"].to_numpy(), rel=1e-5)
    with pytest.raises(LaminaError, match="no label column"):
        model.evaluate(frame.drop(columns=["Class"]))
