"""Data-parallel training under torchrun (gloo on CPU): 2 processes give the model 1 process gives for the same
global batch, a run killed with 2 processes resumes with 1, and processes that see different data stop with a
clear error. Each torchrun job is a real ``python -m torch.distributed.run ... -m lamina train``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lamina
from conftest import cli_env, generated_config, read_yaml, write_yaml
from lamina.checkpoint import STATE
from lamina.distributed import torchrun_command
from test_resume import assert_same_metrics, assert_same_weights, history, model_files

pytestmark = pytest.mark.slow

EPOCHS = 16
TOL = 1e-5


def torchrun(nproc: int, *args: object) -> list[str]:
    return torchrun_command(nproc, [str(a) for a in args])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, cancer_csv: Path) -> Path:
    """Breast cancer, no dropout (each rank would draw its own masks), layer norm, and a batch of 51 that splits
    unevenly over 2 ranks (25 + 26) and leaves a short last batch: the loss weighting must make up for both."""
    folder = tmp_path_factory.mktemp("distributed")
    config = generated_config(cancer_csv, ["diagnosis"], folder / "config.yaml", epochs=EPOCHS, patience=0,
                              batch_size=51, name="ddp")
    raw = read_yaml(config)
    raw["hidden"].update(dropout=0.0, norm="layer")
    raw["trainer"]["device"] = "cpu"
    write_yaml(raw, config)
    return folder


@pytest.fixture(scope="module")
def one_process(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("one") / "ddp"
    lamina.train(project / "config.yaml", output=out, verbose=False, report=False)
    return out


def assert_same_model(a: Path, b: Path) -> None:
    metrics, weights = model_files(a)
    ref_metrics, ref_weights = model_files(b)
    assert_same_metrics(metrics, ref_metrics, tol=TOL)
    assert_same_weights(weights, ref_weights, tol=TOL)
    assert_same_metrics(history(a), history(b), tol=TOL, where="metrics.jsonl")


def test_two_processes_train_the_one_process_model(project: Path, one_process: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    result = subprocess.run(torchrun(2, "train", project / "config.yaml", "--output", out, "-q"), cwd=tmp_path,
                            env=cli_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert_same_model(out, one_process)
    assert [r["epoch"] for r in history(out)] == list(range(1, EPOCHS + 1))
    assert not (tmp_path / "ddp.incomplete").exists()


def workers(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (torchrun's workers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def test_killed_with_two_processes_resumed_with_one(project: Path, one_process: Path, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "config.yaml").write_text((project / "config.yaml").read_text())
    workdir = tmp_path / "runs" / "ddp.incomplete"
    with open(tmp_path / "stderr.txt", "w") as err:
        job = subprocess.Popen(torchrun(2, "train", "config.yaml", "-q"), cwd=tmp_path, env=cli_env(),
                               stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 90
            seen = 0
            while seen < 3 and time.monotonic() < deadline and job.poll() is None:
                try:
                    seen = json.loads((workdir / STATE).read_text())["epoch"]
                except (FileNotFoundError, json.JSONDecodeError, KeyError):
                    time.sleep(0.005)
            assert seen >= 3, f"no checkpoint of epoch 3 (exit {job.poll()})"
            ranks = workers(job.pid)
            assert len(ranks) == 2, ranks
            os.kill(max(ranks), signal.SIGKILL)  # one rank dies; torchrun ends the job
        finally:
            try:
                job.wait(timeout=60)
            except subprocess.TimeoutExpired:
                job.kill()
                job.wait()
    assert job.returncode != 0
    assert not (tmp_path / "runs" / "ddp").exists(), "a killed run must not leave a model directory"
    killed_at = json.loads((workdir / STATE).read_text())["epoch"]
    assert 3 <= killed_at < EPOCHS, killed_at

    # Resumed in one process (this one): the checkpoint holds the global state, not a rank's.
    with caplog.at_level("INFO", logger="lamina"):
        model = lamina.train(tmp_path / "config.yaml", output_dir=tmp_path / "runs", resume=True, verbose=False,
                             report=False)
    assert "resuming after epoch" in caplog.text
    assert model.info["run_dir"] == str(tmp_path / "runs" / "ddp")
    resumed = Path(model.info["run_dir"])
    assert [r["epoch"] for r in history(resumed)] == list(range(1, EPOCHS + 1))
    assert_same_model(resumed, one_process)


DISAGREE = """
import os, sys
import pandas as pd
import lamina
from lamina.errors import LaminaError
frame = pd.read_csv(sys.argv[1])
if os.environ["RANK"] == "1":
    frame = frame.iloc[:-1]  # rank 1 reads a file one row shorter
try:
    lamina.train(sys.argv[2], data=frame, output=sys.argv[3], verbose=False, report=False)
except LaminaError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
"""


def test_processes_that_see_different_data_stop_with_a_clear_error(project: Path, cancer_csv: Path,
                                                                   tmp_path: Path) -> None:
    script = tmp_path / "disagree.py"
    script.write_text(DISAGREE)
    command = torchrun(2, "x")
    command = command[:command.index("-m", 3)] + [str(script), cancer_csv, project / "config.yaml", tmp_path / "m"]
    result = subprocess.run([str(c) for c in command], cwd=tmp_path, env=cli_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    # Every rank stops with the message, none hangs (the two ranks' lines may share a line of the joint stderr).
    message = "error: the 2 processes disagree on the data: rank(s) 1 differ from rank 0"
    assert result.stderr.count(message) == 2, result.stderr[-3000:]
    assert not (tmp_path / "m").exists()


def test_launch_refuses_nested_and_zero() -> None:
    from lamina.distributed import launch
    from lamina.errors import LaminaError

    with pytest.raises(LaminaError, match="--nproc 0"):
        launch(0, ["train", "config.yaml"])
    assert launch(1, ["train", "config.yaml"]) is None  # one process: run here
    os.environ["WORLD_SIZE"] = "2"
    try:
        with pytest.raises(LaminaError, match="not both"):
            launch(2, ["train", "config.yaml"])
    finally:
        del os.environ["WORLD_SIZE"]


def test_launch_runs_torchrun(project: Path, one_process: Path, tmp_path: Path) -> None:
    """``lamina.distributed.launch(2, argv)``, what ``lamina train --nproc 2`` calls, gives the same model."""
    code = ("import sys; from lamina.distributed import launch; launch(2, sys.argv[1:])")
    out = tmp_path / "ddp"
    result = subprocess.run([sys.executable, "-c", code, "train", str(project / "config.yaml"), "--nproc", "2",
                             "-o", str(out), "--nproc=2", "-q"],
                            cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_model(out, one_process)


@pytest.mark.parametrize("world, batch", [(2, 51), (3, 41), (4, 2)])
def test_shards_cover_the_global_batch(monkeypatch: pytest.MonkeyPatch, world: int, batch: int) -> None:
    """Contiguous slices that together are the batch; the loss weights rows * world / batch average to 1 per row;
    a rank left without rows runs one row at weight 0."""
    import torch

    from lamina import distributed

    index = torch.arange(100, 100 + batch)
    pieces, counted = [], 0
    for here in range(world):
        monkeypatch.setattr(distributed, "active", lambda: True)
        monkeypatch.setattr(distributed, "world_size", lambda: world)
        monkeypatch.setattr(distributed, "rank", lambda here=here: here)
        mine, rows = distributed.shard(index)
        assert len(mine) >= 1 and rows in (len(mine), 0)
        if rows:
            pieces.append(mine)
        counted += rows
    assert counted == batch
    assert torch.equal(torch.cat(pieces), index)
