"""``trainer.time_limit``: how it is written, the schedule laid over it, training that stops at it (with a fake
clock, so no test depends on how fast a shared machine is), resume that counts the time spent, and the budget,
epochs and image widths `lamina init` picks from the data's size."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from conftest import assert_user_error, edit_config, read_yaml, run_cli, stop_after, write_yaml
from lamina.budget import Budget, format_duration, parse_duration, progress
from lamina.checkpoint import STATE, TENSORS
from lamina.config import TrainerConfig, validate_config
from lamina.data.load import load_splits
from lamina.errors import LaminaError
from lamina.infer import infer, init_config
from lamina.sizing import NARROW_WIDTHS, size_training
from lamina.run import as_config
from lamina.training import fit, lr_factor

BASE = {"inputs": [{"name": "a", "type": "number"}], "outputs": [{"name": "b", "type": "number"}],
        "data": {"path": "x.csv"}}


class FakeClock:
    """A clock that moves ``tick`` seconds each time it is read: the training's time is its number of reads."""

    def __init__(self, start: float = 0.0, tick: float = 1.0) -> None:
        self.now, self.tick = start, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


# --- writing a duration ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, seconds", [("10m", 600), ("90s", 90), ("1h", 3600), ("1.5h", 5400), (45, 45),
                                            (2.5, 2.5), ("2 minutes", 120), (" 30 sec ", 30), ("0.5m", 30)])
def test_time_limit_accepts_seconds_and_unit_strings(value, seconds) -> None:
    assert validate_config({**BASE, "trainer": {"time_limit": value}}).trainer.time_limit == seconds
    assert parse_duration(format_duration(seconds)) == seconds  # what init writes reads back


@pytest.mark.parametrize("value", ["ten minutes", "10d", "0", "-5m", 0, -1, True, "", "m"])
def test_a_bad_time_limit_is_one_line_naming_the_key(value) -> None:
    with pytest.raises(LaminaError) as error:
        validate_config({**BASE, "trainer": {"time_limit": value}})
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("config: trainer.time_limit: ") and "'10m'" in message


def test_the_cli_refuses_a_bad_time_limit_in_one_line(cancer_project: Path, tmp_path: Path) -> None:
    config = read_yaml(cancer_project / "config.yaml")
    config["trainer"]["time_limit"] = "ten minutes"
    config["data"]["path"] = str((cancer_project / config["data"]["path"]).resolve())
    path = write_yaml(config, tmp_path / "config.yaml")
    assert_user_error(run_cli("train", path, cwd=tmp_path), "trainer.time_limit", "ten minutes", "'90s', '10m'")


# --- the schedule over the time budget ------------------------------------------------------------------------------


def test_progress_reaches_the_end_at_the_deadline_whatever_the_steps() -> None:
    assert progress(10, 1000, elapsed=60.0, limit=60.0) == 1.0
    assert progress(10, 1000, elapsed=600.0, limit=60.0) == 1.0  # past it: stays at the end
    assert progress(500, 1000, elapsed=15.0, limit=60.0) == 0.5  # steps ahead of the clock: the steps rule
    assert progress(100, 1000, elapsed=30.0, limit=60.0) == 0.5  # the clock ahead: the clock rules
    assert progress(100, 1000, elapsed=1e9, limit=None) == 0.1  # no budget: steps only
    curve = [progress(s, 100, elapsed=s * 1.0, limit=50.0) for s in range(101)]
    assert curve == sorted(curve) and curve[50] == 1.0


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_the_learning_rate_schedule_ends_when_the_time_runs_out(schedule: str) -> None:
    timed = TrainerConfig(schedule=schedule, time_limit="10m")
    assert lr_factor(timed, 5, 1000, elapsed=600.0) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(timed, 5, 1000, elapsed=300.0) == lr_factor(TrainerConfig(schedule=schedule), 500, 1000)
    # Well inside the budget the schedule is the step schedule, exactly.
    untimed = TrainerConfig(schedule=schedule)
    assert lr_factor(timed, 700, 1000, elapsed=1.0) == lr_factor(untimed, 700, 1000)


def test_the_budget_clock_starts_at_zero_and_processes_agree_only_under_a_limit() -> None:
    clock = FakeClock(start=1000.0)
    budget = Budget(60.0, spent=25.0, clock=clock)
    assert budget.elapsed() == 25.0  # the first read starts this run's clock: a resumed run starts at its spent time
    assert budget.elapsed() == 26.0
    assert not budget.expired(59.9) and budget.expired(60.0)
    agreed = Budget(60.0, clock=FakeClock(), agree=lambda seconds: seconds + 100)
    assert agreed.elapsed() == 100.0
    assert Budget(None, clock=FakeClock(), agree=lambda seconds: seconds + 100).elapsed() == 0.0
    assert not Budget(None).expired(1e12)


# --- training that stops at the deadline ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def timed_setup(cancer_project: Path, tmp_path_factory: pytest.TempPathFactory):
    """The cancer table with 40 epochs and no patience: only the time limit can stop it early."""
    folder = tmp_path_factory.mktemp("time_budget")
    config_path = edit_config(cancer_project / "config.yaml", folder / "config.yaml", epochs=40, patience=0,
                              batch_size=64)
    config, base_dir, _ = as_config(config_path)
    frames, sources = load_splits(config, base_dir)
    steps = math.ceil(len(frames["train"]) / 64)
    # The fake clock is read once a step and once after each epoch's validation: an epoch is steps + 1 seconds.
    # A limit in the middle of epoch 5 stops it there, whatever small offset a resume adds.
    config.trainer.time_limit = 4.5 * (steps + 1)
    return config, frames, sources


def test_a_tiny_time_limit_stops_training_keeping_the_best_epoch(timed_setup, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    config, frames, sources = timed_setup
    with caplog.at_level("INFO", logger="lamina"):
        fitted = fit(config, frames, sources, workdir=tmp_path, verbose=False, clock=FakeClock())
    assert len(fitted.history) == 5 < config.trainer.epochs
    assert fitted.predictor.info["epochs_run"] == 5
    stops = [r.getMessage() for r in caplog.records if "time_limit" in r.getMessage()]
    assert stops == [f"stopping at epoch 5: trainer.time_limit ({format_duration(config.trainer.time_limit)}) "
                     f"reached; best epoch {fitted.best_epoch}"]
    losses = [r["val_loss"] for r in fitted.history]
    assert fitted.best_epoch == int(np.argmin(losses)) + 1
    # The returned network is the best epoch's, as saved in the checkpoint.
    best = {k[5:]: v for k, v in load_file(str(tmp_path / TENSORS)).items() if k.startswith("best.")}
    weights = fitted.predictor.network.state_dict()
    assert set(best) == set(weights)
    assert all(torch.equal(best[k], weights[k]) for k in best)
    # The schedule was laid over the time: the learning rate is far below what 5 of 40 epochs' steps would give.
    steps = math.ceil(len(frames["train"]) / 64)
    by_steps = config.trainer.learning_rate * lr_factor(TrainerConfig(), 5 * steps, 40 * steps)
    assert fitted.history[-1]["lr"] < 0.1 * by_steps
    assert json.loads((tmp_path / STATE).read_text())["elapsed"] >= config.trainer.time_limit


def test_resume_counts_the_time_already_spent(timed_setup, tmp_path: Path) -> None:
    config, frames, sources = timed_setup
    whole = fit(config, frames, sources, workdir=tmp_path / "whole", verbose=False, clock=FakeClock())
    workdir = tmp_path / "interrupted"
    first = FakeClock(start=50.0)
    with pytest.raises(KeyboardInterrupt):
        fit(config, frames, sources, workdir=workdir, verbose=False, on_epoch=stop_after(2), clock=first)
    spent = json.loads((workdir / STATE).read_text())["elapsed"]
    steps = math.ceil(len(frames["train"]) / 64)
    assert spent == 2 * (steps + 1) - 1  # every read after the first, as the clock moved
    # A fresh clock far from the first: only the spent seconds carry over.
    resumed = fit(config, frames, sources, workdir=workdir, resume=True, verbose=False, clock=FakeClock(start=1e6))
    assert len(resumed.history) == len(whole.history) == 5  # not 5 more epochs after the resume
    assert json.loads((workdir / STATE).read_text())["elapsed"] >= config.trainer.time_limit


def test_resume_after_the_deadline_trains_no_more(timed_setup, tmp_path: Path) -> None:
    config, frames, sources = timed_setup
    done = fit(config, frames, sources, workdir=tmp_path, verbose=False, clock=FakeClock())
    again = fit(config, frames, sources, workdir=tmp_path, resume=True, verbose=False, clock=FakeClock())
    assert again.history == done.history and again.best_epoch == done.best_epoch


# --- what `lamina init` picks from the data's size ------------------------------------------------------------------


def _digit_files(folder: Path, count: int, side: int) -> list[Path]:
    """Real digits (scikit-learn's 8×8, resized to ``side``) as greyscale PNGs in class subfolders."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for n in range(count):
        image = Image.fromarray(np.round(digits.images[n] * 255 / 16).astype(np.uint8), "L")
        path = folder / str(digits.target[n]) / f"{n:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        (image if side == 8 else image.resize((side, side))).save(path)
        paths.append(path)
    return paths


def test_init_keeps_full_epochs_and_a_short_budget_for_a_small_folder(tmp_path: Path) -> None:
    _digit_files(tmp_path / "digits", 1797, 8)
    path, _ = init_config(tmp_path / "digits", ["label"], tmp_path / "config.yaml")
    text = path.read_text()
    config = read_yaml(path)
    assert config["trainer"]["epochs"] == 100
    assert config["trainer"]["time_limit"] == "5m"
    assert "options" not in config["inputs"][0]  # the image type's default widths
    assert "# sized from the data: 1258 training rows" in text  # the comment says why


def test_init_shortens_and_narrows_training_for_a_large_folder(tmp_path: Path) -> None:
    # 40,000 rows of 28×28 greyscale images (a few files, listed many times: init reads a sample's headers).
    files = _digit_files(tmp_path / "images", 20, 28)
    frame = pd.DataFrame({"image": [str(files[n % 20].relative_to(tmp_path)) for n in range(40_000)],
                          "label": [files[n % 20].parent.name for n in range(40_000)]})
    frame.to_csv(tmp_path / "big.csv", index=False)
    path, _ = init_config(tmp_path / "big.csv", ["label"], tmp_path / "config.yaml")
    text = path.read_text()
    config = read_yaml(path)
    assert config["trainer"]["time_limit"] == "10m"
    assert 3 <= config["trainer"]["epochs"] < 30
    assert config["inputs"][0]["options"] == {"widths": NARROW_WIDTHS}
    assert "# sized from the data: 28000 training rows" in text and "widths [16, 32, 64]" in text
    assert validate_config(config).trainer.time_limit == 600.0
    # Bigger still: fewer epochs, never under the floor.
    big = pd.concat([frame] * 10, ignore_index=True)
    sizing = size_training(big, infer(big.iloc[:100], ["label"], str(tmp_path / "big.csv")), tmp_path)
    assert sizing.epochs == 3 < config["trainer"]["epochs"] and sizing.time_limit == 600.0


def test_init_keeps_a_small_table_at_the_defaults(cancer_csv: Path, tmp_path: Path) -> None:
    path, _ = init_config(cancer_csv, ["diagnosis"], tmp_path / "config.yaml")
    config = read_yaml(path)
    assert config["trainer"]["epochs"] == 100 and config["trainer"]["time_limit"] == "5m"


def test_init_counts_a_long_series_by_its_readings_not_its_printed_text(tmp_path: Path) -> None:
    # An array-valued series column prints abbreviated ("[0. 1. ... 4999.]"); sizing must count its 5,000 readings,
    # the same as the 5,000 comma-separated readings of the same series as text.
    series = np.arange(5000, dtype=float)
    arrays = pd.DataFrame({"s": [series] * 20, "label": [0, 1] * 10})
    texts = pd.DataFrame({"s": [",".join(map(str, series))] * 20, "label": [0, 1] * 10})
    inferred = infer(texts, ["label"], str(tmp_path / "t.csv"))
    assert dict(inferred.inputs)["s"] == "timeseries"
    of_arrays = size_training(arrays, inferred, tmp_path).note
    assert of_arrays == size_training(texts, inferred, tmp_path).note
