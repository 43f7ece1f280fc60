"""A corpus of bad inputs, one parametrized case each: configs, data files of every type, model directories,
checkpoints, output paths and HTTP requests. A CLI case must end with exit code 2 and one line on stderr naming the
file, column, row, key or field at fault; a request case with its HTTP status and the field named. Then the extreme
numbers (±1e308, infinities, 1e30) through the CLI and the server, and log lines that stay small.

Fast: one tiny model (and one interrupted run) is trained once, in-process; no case trains. Cases that give
``lamina train`` bad data fail while the data is read and fitted, before the first epoch."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import lamina
from bad_input_cases import (
    CHECKPOINT_CASES, CLI_CASES, COLUMNS, CONFIG_CASES, DATA_CASES, HUGE_TEXT, MODEL_CASES, OUTPUT_CASES, Case, Tiny,
    base_config,
)
from conftest import assert_ok, assert_user_error, run_cli, show, stop_after, write_yaml
from lamina.logs import Tidy, tidy
from lamina.run import as_config
from lamina.serve.app import Limits, create_app


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, cancer_frame: pd.DataFrame) -> Tiny:
    from lamina.data.load import load_splits
    from lamina.training import fit

    folder = tmp_path_factory.mktemp("corpus")
    frame = cancer_frame.assign(size=pd.cut(cancer_frame["mean area"], [0, 500, 900, 1e9],
                                            labels=["small", "medium", "large"]).astype(str))[COLUMNS]
    data = folder / "data.csv"
    frame.to_csv(data, index=False)
    config = base_config(data)
    write_yaml(config, folder / "config.yaml")
    model = lamina.train(folder / "config.yaml", output=folder / "model", verbose=False, report=False)
    parsed, base_dir, _ = as_config(folder / "config.yaml")
    frames, sources = load_splits(parsed, base_dir)
    interrupted = folder / "runs" / "tiny.incomplete"
    with pytest.raises(KeyboardInterrupt):
        fit(parsed, frames, sources, workdir=interrupted, verbose=False, on_epoch=stop_after(1))
    return Tiny(folder, data, config, Path(model.info["run_dir"]), interrupted)


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_bad_input_is_exit_2_and_one_line_naming_it(case: Case, tiny: Tiny, tmp_path: Path) -> None:
    args = case.make(tmp_path, tiny)
    result = run_cli(*args, cwd=tmp_path)
    message = assert_user_error(result, *case.mentions)
    print(f"\n{case.id}: {message}")
    assert len(message) < 600, f"a long message ({len(message)} characters):\n{show(result)}"
    assert "epoch" not in result.stdout.lower(), "no case may get as far as training"
    assert not (tmp_path / "pwned").exists()


# --- HTTP requests ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tiny: Tiny) -> TestClient:
    return TestClient(create_app(lamina.load(tiny.model), limits=Limits(rows=50, json_bytes=64 << 10)))


GOOD_ROW = '{"mean radius": 14.0, "mean texture": 19.0, "size": "small"}'


def body(row: str) -> str:
    return '{"rows": [' + row + ']}'


@dataclass(frozen=True)
class Request:
    id: str
    content: str
    status: int
    field: str | None  # the field the 422's loc must name (body, rows, row number, field)


REQUEST_CASES = [
    Request("infinity", body('{"mean radius": Infinity, "mean texture": 19.0, "size": "small"}'), 422, "mean radius"),
    Request("minus-infinity", body('{"mean radius": 14.0, "mean texture": -Infinity, "size": "small"}'), 422,
            "mean texture"),
    Request("nan", body('{"mean radius": NaN, "mean texture": 19.0, "size": "small"}'), 422, "mean radius"),
    Request("1e308", body('{"mean radius": 1e308, "mean texture": 19.0, "size": "small"}'), 422, "mean radius"),
    Request("minus-1e308", body('{"mean radius": -1e308, "mean texture": 19.0, "size": "small"}'), 422, "mean radius"),
    Request("1e999-overflows-to-inf", body('{"mean radius": 1e999, "mean texture": 19.0, "size": "small"}'), 422,
            "mean radius"),
    Request("word-in-number", body('{"mean radius": "big", "mean texture": 19.0, "size": "small"}'), 422,
            "mean radius"),
    Request("missing-field", body('{"mean radius": 14.0, "size": "small"}'), 422, "mean texture"),
    Request("object-in-category", body('{"mean radius": 14.0, "mean texture": 19.0, "size": {"a": 1}}'), 422,
            "size"),
    Request("rows-empty", '{"rows": []}', 422, "rows"),
    Request("rows-not-a-list", '{"rows": {"mean radius": 1}}', 422, "rows"),
    Request("no-rows-key", '{"row": []}', 422, "rows"),
    Request("not-json", '{"rows": [', 422, None),
    Request("too-many-rows", body(",".join([GOOD_ROW] * 51)), 413, None),
    Request("body-too-large", body(GOOD_ROW[:-1] + ', "pad": "' + "x" * (70 << 10) + '"}'), 413, None),
]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=[c.id for c in REQUEST_CASES])
def test_bad_request_gets_its_status_naming_the_field(case: Request, client: TestClient) -> None:
    response = client.post("/predict", content=case.content, headers={"content-type": "application/json"})
    assert response.status_code == case.status, response.text[:2000]
    detail = response.json()["detail"]
    if case.field is not None:
        assert isinstance(detail, list) and case.field in detail[0]["loc"][:5], detail
    assert len(response.content) < 4000, "an answer that echoes a large body"
    assert client.get("/health").status_code == 200  # the server goes on answering


def test_the_corpus_covers_every_group() -> None:
    counts = {"configs": len(CONFIG_CASES), "data files": len(DATA_CASES), "model directories": len(MODEL_CASES),
              "checkpoints": len(CHECKPOINT_CASES), "output paths": len(OUTPUT_CASES),
              "requests": len(REQUEST_CASES)}
    print("\n" + ", ".join(f"{group}: {n}" for group, n in counts.items()) + f"; {sum(counts.values())} in all")
    assert sum(counts.values()) >= 60 and min(counts.values()) >= 5, counts
    kinds = {"csv", "parquet", "jsonl", "image", "audio", "timeseries", "text"}
    assert kinds <= {c.id.split("-")[0] for c in DATA_CASES}, "a data file type without a case"


# --- extreme numbers that are not errors ------------------------------------------------------------------------------


def test_1e30_at_prediction_gives_finite_probabilities_through_the_cli_and_the_server(
        tiny: Tiny, client: TestClient, tmp_path: Path) -> None:
    frame = pd.read_csv(tiny.data).head(20)
    frame.loc[3, "mean radius"] = 1e30
    frame.loc[4, "mean texture"] = -1e38
    frame.to_csv(tmp_path / "far.csv", index=False)
    result = assert_ok(run_cli("predict", tiny.model, "far.csv", "-o", "preds.csv", cwd=tmp_path))
    assert "column 'mean radius'" in result.stderr and "clipped" in result.stderr, show(result)
    predictions = pd.read_csv(tmp_path / "preds.csv")
    probabilities = predictions.filter(like="_proba_")
    assert len(predictions) == 20 and np.isfinite(probabilities.to_numpy()).all()
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    response = client.post("/predict", content=body('{"mean radius": 1e30, "mean texture": -1e38, "size": null}'),
                           headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    shares = response.json()["predictions"][0]["diagnosis"]["probabilities"]
    assert all(np.isfinite(v) for v in shares.values()) and abs(sum(shares.values()) - 1) < 1e-5


def test_extreme_training_values_fit_without_overflow() -> None:
    from lamina.inputs.number import NumberInput, NumberOptions, moments

    values = np.array([1e38, -1e38, 3.0, 1e37])
    mean, std = moments(values)
    assert np.isfinite(mean) and np.isfinite(std) and std > 0
    number = NumberInput("x", NumberOptions(normalization="minmax"))
    number.fit(pd.Series(values))
    assert np.isfinite(number.state["scale"]) and number.state["scale"] > 0
    assert torch_finite(number.transform(pd.Series([1e38, -1e38, 0.0, np.nan])))


def torch_finite(tensor: Any) -> bool:
    return bool(np.isfinite(tensor.numpy()).all())


# --- log lines ---------------------------------------------------------------------------------------------------------


def test_a_repeated_warning_is_counted_and_a_long_value_cut() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(Tidy())
    logger = logging.getLogger("lamina.test_corpus")
    logger.addHandler(handler)
    try:
        for _ in range(150):
            logger.warning("column '%s': value %r not seen", "size", HUGE_TEXT)
        logger.warning("column '%s': value %r not seen", "other", "short")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4, lines  # the 1st, the 10th, the 100th, then another column's
    assert all(len(line) < 500 for line in lines)
    assert "(the same warning 100 times so far)" in lines[2] and "other" in lines[3]


def test_the_server_log_stays_small_under_requests_with_a_huge_value(tiny: Tiny, client: TestClient) -> None:
    """100 requests whose category value is 1 MB: the warnings about it stay a few lines of a few hundred bytes."""
    stream = io.StringIO()
    handler = tidy(logging.StreamHandler(stream))
    logger = logging.getLogger("lamina")
    logger.addHandler(handler)
    row = json.dumps({"mean radius": 14.0, "mean texture": 19.0, "size": "y" * (60 << 10)})
    try:
        for _ in range(100):
            assert client.post("/predict", content=body(row), headers={"content-type": "application/json"}).status_code == 200
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "not seen in training" in written, written[:500]
    assert len(written) < 3000 and len(written.splitlines()) <= 3, written[:3000]


# --- evaluate says what it leaves out -------------------------------------------------------------------------------


def test_evaluate_counts_the_rows_of_unseen_labels_it_leaves_out(tiny: Tiny, tmp_path: Path) -> None:
    frame = pd.read_csv(tiny.data).head(60)
    frame.loc[:6, "diagnosis"] = "borderline"
    frame.to_csv(tmp_path / "labelled.csv", index=False)
    result = assert_ok(run_cli("evaluate", tiny.model, "labelled.csv", "--json", "m.json", cwd=tmp_path))
    assert "7 row(s)" in result.stderr and "'diagnosis'" in result.stderr and "borderline" in result.stderr, show(result)
    assert json.loads((tmp_path / "m.json").read_text())["diagnosis"]["rows"] == 53


def test_a_closed_pipe_ends_predict_quietly(tiny: Tiny, tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import cli_env

    pd.concat([pd.read_csv(tiny.data)] * 40).to_csv(tmp_path / "many.csv", index=False)  # beyond a pipe's buffer
    command = f"{sys.executable} -m lamina predict {tiny.model} many.csv | head -1"
    result = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=tmp_path, env=cli_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.stdout.startswith("diagnosis,"), result.stdout[:500]
    assert result.stderr == "", result.stderr[-3000:]
    assert result.returncode == 141, result.returncode  # 128 + SIGPIPE, as a Unix tool ends
