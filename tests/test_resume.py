"""Determinism and resume: the same config trains the same model, and a run killed mid-training and resumed with
``--resume`` ends with exactly the model an uninterrupted run gives."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import lamina
from conftest import (
    assert_ok, assert_user_error, cli_env, edit_config, generated_config, lamina_command, read_yaml, run_cli, show,
    stop_after, write_yaml,
)
from lamina.checkpoint import STATE, TENSORS
from lamina.data.load import load_splits
from lamina.run import as_config
from lamina.training import fit

EPOCHS = 25


# --- comparing two models -----------------------------------------------------------------------------------------


def assert_same_metrics(a: Any, b: Any, tol: float = 1e-6, where: str = "metrics") -> None:
    """Equal structure, equal labels and counts, floats within ``tol``."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            assert_same_metrics(a[key], b[key], tol, f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: {a} != {b}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_metrics(x, y, tol, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=0, abs_tol=tol) or (math.isnan(a) and math.isnan(b)), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], tol: float = 1e-6) -> None:
    assert set(a) == set(b)
    for key in a:
        assert a[key].shape == b[key].shape, key
        assert torch.allclose(a[key], b[key], rtol=0, atol=tol), f"{key}: max diff {(a[key] - b[key]).abs().max()}"


def model_files(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The metrics in a model directory's lamina.json and its weights."""
    info = json.loads((folder / "lamina.json").read_text(encoding="utf-8"))
    return info["metrics"], load_file(str(folder / "weights.safetensors"))


def history(folder: Path) -> list[dict[str, Any]]:
    """metrics.jsonl without the wall-clock seconds, which no two runs share."""
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


# --- the Default project: 25 epochs, no early stopping ------------------------------------------------------------


@pytest.fixture(scope="module")
def default_project(tmp_path_factory: pytest.TempPathFactory, default_csv: Path) -> Path:
    """A folder with ``config.yaml``: Default, 25 epochs, patience 0 (never stops early), run name ``crash``."""
    project = tmp_path_factory.mktemp("resume_project")
    generated_config(default_csv, ["default"], project / "config.yaml", epochs=EPOCHS, patience=0, batch_size=64,
                     name="crash")
    return project


@pytest.fixture(scope="module")
def reference(default_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run of the Default config (Python API), written outside the project's runs/ folder."""
    out = tmp_path_factory.mktemp("reference") / "crash"
    model = lamina.train(default_project / "config.yaml", output=out, verbose=False)
    assert model.info["epochs_run"] == EPOCHS
    return out


@pytest.mark.slow
def test_training_twice_gives_the_same_model(reference: Path, default_project: Path, tmp_path: Path) -> None:
    again = lamina.train(default_project / "config.yaml", output=tmp_path / "again", verbose=False)
    metrics, weights = model_files(Path(again.info["run_dir"]))
    ref_metrics, ref_weights = model_files(reference)
    assert metrics == ref_metrics  # exactly: same seed, same data, same numbers
    assert_same_weights(weights, ref_weights, tol=0)
    assert history(Path(again.info["run_dir"])) == history(reference)
    assert metrics["test"]["default"]["roc_auc"] > 0.9


def wait_for_epoch(process: subprocess.Popen, state: Path, epoch: int, timeout: float = 120) -> int:
    """Wait until the checkpoint ``state`` reports at least ``epoch``; returns the epoch it reports."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"training ended (exit {process.returncode}) before a checkpoint of epoch {epoch} was seen; "
                        "make the run longer")
        try:
            seen = json.loads(state.read_text(encoding="utf-8"))["epoch"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            seen = 0
        if seen >= epoch:
            return seen
        time.sleep(0.005)
    process.kill()
    pytest.fail(f"no checkpoint of epoch {epoch} after {timeout} s")


@pytest.mark.slow
def test_resume_after_a_crash_gives_the_uninterrupted_model(default_project: Path, reference: Path,
                                                            default_csv: Path, tmp_path: Path) -> None:
    project = tmp_path
    (project / "config.yaml").write_text((default_project / "config.yaml").read_text())
    workdir = project / "runs" / "crash.incomplete"

    # A fresh `python -m lamina train` (not forked), killed with SIGKILL as a crash or an OOM kill would.
    with open(project / "stderr.txt", "w") as err:
        process = subprocess.Popen(lamina_command("train", "config.yaml"), cwd=project, env=cli_env(),
                                   stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_for_epoch(process, workdir / STATE, 3)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (project / "runs" / "crash").exists(), "a killed run must not leave a model directory"
    state = json.loads((workdir / STATE).read_text())
    killed_at = state["epoch"]
    assert 3 <= killed_at < EPOCHS
    consistent = int(load_file(str(workdir / TENSORS))["epoch"]) == killed_at

    # The unfinished run is not a model, and says how to go on.
    unfinished = run_cli("predict", workdir, default_csv, cwd=project)
    assert_user_error(unfinished, "--resume")

    resumed = assert_ok(run_cli("train", "config.yaml", "--resume", cwd=project))
    if consistent:  # else killed between the two checkpoint files: the run restarts, with the same result
        assert f"resuming after epoch {killed_at}" in resumed.stderr, show(resumed)
    model = project / "runs" / "crash"
    assert "runs/crash" in resumed.stdout, show(resumed)
    assert not workdir.exists()

    metrics, weights = model_files(model)
    ref_metrics, ref_weights = model_files(reference)
    assert_same_metrics(metrics, ref_metrics)
    assert_same_weights(weights, ref_weights)
    resumed_history, ref_history = history(model), history(reference)
    assert [r["epoch"] for r in resumed_history] == list(range(1, EPOCHS + 1)), "each epoch logged exactly once"
    assert_same_metrics(resumed_history, ref_history, where="metrics.jsonl")


# --- the Python API: fit(..., on_epoch=stop_after(n)) then fit(..., resume=True) ----------------------------------------


@pytest.fixture(scope="module")
def cancer_setup(cancer_project: Path, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("fit_resume")
    config_path = edit_config(cancer_project / "config.yaml", folder / "config.yaml", epochs=8, patience=0,
                              batch_size=32)
    config, base_dir, _ = as_config(config_path)
    frames, sources = load_splits(config, base_dir)
    return config, frames, sources


def test_fit_resume_matches_an_uninterrupted_fit(cancer_setup, tmp_path: Path) -> None:
    config, frames, sources = cancer_setup
    whole = fit(config, frames, sources, workdir=tmp_path / "whole", verbose=False)

    workdir = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        fit(config, frames, sources, workdir=workdir, verbose=False, on_epoch=stop_after(3))
    assert json.loads((workdir / STATE).read_text())["epoch"] == 3
    resumed = fit(config, frames, sources, workdir=workdir, resume=True, verbose=False)

    assert_same_metrics(resumed.predictor.metrics, whole.predictor.metrics)
    assert_same_weights(resumed.predictor.network.state_dict(), whole.predictor.network.state_dict())
    assert resumed.best_epoch == whole.best_epoch
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert drop(resumed.history) == drop(whole.history)
    assert [r["epoch"] for r in resumed.history] == list(range(1, 9))


def test_fit_resume_without_a_checkpoint_starts_over(cancer_setup, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    config, frames, sources = cancer_setup
    config = config.model_copy(deep=True)
    config.trainer.epochs = 2
    (tmp_path / "empty").mkdir()
    with caplog.at_level("WARNING", logger="lamina"):
        fitted = fit(config, frames, sources, workdir=tmp_path / "empty", resume=True, verbose=False)
    assert "no checkpoint" in caplog.text
    assert [r["epoch"] for r in fitted.history] == [1, 2]


# --- resuming with another config ---------------------------------------------------------------------------------


def changed_epochs(config: dict) -> None:
    config["trainer"]["epochs"] += 5


def changed_input_type(config: dict) -> None:
    next(s for s in config["inputs"] if s["name"] == "student")["type"] = "category"


def added_input(config: dict) -> None:
    config["inputs"].append({"name": "rownames", "type": "number"})


def changed_hidden_width(config: dict) -> None:
    config["hidden"]["width"] = 32


@pytest.mark.parametrize("change", [changed_epochs, changed_input_type, added_input, changed_hidden_width])
def test_resume_with_a_changed_config_is_refused(default_project: Path, tmp_path: Path, change) -> None:
    config_path = tmp_path / "config.yaml"
    raw = read_yaml(default_project / "config.yaml")
    raw["trainer"]["epochs"] = 4
    write_yaml(raw, config_path)
    config, base_dir, name = as_config(config_path)
    frames, sources = load_splits(config, base_dir)
    workdir = tmp_path / "runs" / f"{name}.incomplete"
    with pytest.raises(KeyboardInterrupt):
        fit(config, frames, sources, workdir=workdir, verbose=False, on_epoch=stop_after(1))

    change(raw)
    write_yaml(raw, config_path)
    result = run_cli("train", "config.yaml", "--resume", "-q", cwd=tmp_path)
    assert_user_error(result, "crash.incomplete", "config changed", "--resume")
    assert (workdir / STATE).is_file(), "a refused resume keeps the checkpoint"
    assert not (tmp_path / "runs" / "crash").exists()
