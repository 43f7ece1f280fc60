"""The recommender trains in the one loop: a recommendation run killed with SIGKILL and resumed with ``--resume``
ends with the model an uninterrupted run gives, and ``--nproc 2`` (DDP, gloo on CPU) trains the one-process
model (the same loss, as a unit test shows: each process's slice of a batch, scored against every item of the
batch, sums to the whole batch's loss and gradient). MovieLens as in test_recommend.py (``movielens`` is its
fixture)."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import lamina
from conftest import assert_ok, cli_env, lamina_command, run_cli, show
from lamina.checkpoint import STATE
from lamina.config import validate_config
from lamina.ranking.data import Interactions
from lamina.ranking.model import build_network, tower_preprocessors
from lamina.ranking.task import PairLoss, _pair_tensors
from lamina.recommend import commands
from test_distributed import torchrun
from test_recommend import movielens  # noqa: F401 - the fixture
from test_resume import assert_same_metrics, assert_same_weights, history, model_files, wait_for_epoch

EPOCHS = 6
TIMINGS = ("train_seconds", "recs_per_second")  # wall-clock figures inside the metrics, which no two runs share


def recommendation_config(movielens: Path, folder: Path, **trainer: Any) -> Path:
    """The config ``lamina init`` writes for the log, with ``trainer`` edits and the log copied beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_bytes((movielens / "ratings.csv").read_bytes())
    path, _ = commands.init_recommendation_config(folder / "ratings.csv", "userId", "movieId", folder / "config.yaml",
                                                  time="timestamp")
    raw = yaml.safe_load(path.read_text())
    raw["name"] = "rec"
    raw["trainer"].update(device="cpu", **{"epochs": EPOCHS, **trainer})
    raw["trainer"]["early_stopping"]["patience"] = 0  # every epoch runs: the runs compared have the same length
    path.write_text(yaml.safe_dump(raw))
    return path


def same_model(a: Path, b: Path, tol: float, weights: bool = True, epochs: int = EPOCHS) -> None:
    def metrics(folder: Path) -> dict[str, Any]:
        found, _ = model_files(folder)
        return {name: {k: v for k, v in m.items() if k not in TIMINGS} for name, m in found["test"].items()}

    assert_same_metrics(metrics(a), metrics(b), tol=tol)
    if weights:
        assert_same_weights(model_files(a)[1], model_files(b)[1], tol=tol)
    assert_same_metrics(history(a), history(b), tol=tol, where="metrics.jsonl")
    assert [r["epoch"] for r in history(a)] == list(range(1, epochs + 1)), "each epoch logged exactly once"


@pytest.mark.parametrize("loss", ["softmax", "bpr"])
def test_slices_of_a_batch_sum_to_the_whole_batch_loss_and_gradient(loss: str) -> None:
    config = validate_config({"task": "recommendation", "hidden": {"dropout": 0.0},
                              "recommendation": {"user": "u", "item": "i", "recent": 2, "embedding_dim": 8,
                                                 "loss": loss}})
    rng = np.random.default_rng(0)
    user, item = rng.integers(0, 5, 40), rng.integers(0, 7, 40)  # repeated items: in-batch duplicates are masked
    frames = pd.DataFrame({"u": [f"u{n}" for n in range(5)]}), pd.DataFrame({"i": [f"i{n}" for n in range(7)]})
    data = Interactions([f"u{n}" for n in range(5)], [f"i{n}" for n in range(7)], user, item,
                        np.arange(40, dtype=float), user, item, frames[1], frames[0])
    user_prep, item_prep = tower_preprocessors(config)
    user_prep.fit(frames[0], "users")
    item_prep.fit(frames[1], "items")
    torch.manual_seed(0)
    net = build_network(config, user_prep, item_prep, 7)
    module = PairLoss(net, config.recommendation, _pair_tensors(data, np.arange(40), 2, torch.device("cpu")),
                      user_prep.inputs_to_tensors(frames[0]), item_prep.inputs_to_tensors(frames[1]))
    index, negative = torch.randperm(40)[:13], torch.randint(0, 7, (13,))

    def loss_and_gradient(mine: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # Weighted as the loop weights a process's loss: its rows over the global batch's.
        value = module({"index": index, "mine": mine, "negative": negative}) * len(mine) / len(index)
        return value.detach(), torch.autograd.grad(value, list(net.parameters()), allow_unused=True)

    whole, whole_grad = loss_and_gradient(torch.arange(13))
    parts = [loss_and_gradient(torch.arange(0, 6)), loss_and_gradient(torch.arange(6, 13))]
    assert torch.allclose(parts[0][0] + parts[1][0], whole, atol=1e-6)
    for w, a, b in zip(whole_grad, parts[0][1], parts[1][1]):
        if w is not None:
            assert torch.allclose(a + b, w, atol=1e-6)


@pytest.mark.slow
def test_killed_recommendation_resumes_to_the_uninterrupted_model(movielens: Path, tmp_path: Path) -> None:  # noqa: F811
    config = recommendation_config(movielens, tmp_path / "project")
    reference = tmp_path / "reference"
    lamina.train(config, output=reference, verbose=False)

    project = config.parent
    workdir = project / "runs" / "rec.incomplete"
    with open(project / "stderr.txt", "w") as err:
        process = subprocess.Popen(lamina_command("train", "config.yaml"), cwd=project, env=cli_env(),
                                   stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_for_epoch(process, workdir / STATE, 2)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (project / "runs" / "rec").exists(), "a killed run must not leave a model directory"
    killed_at = json.loads((workdir / STATE).read_text())["epoch"]
    assert 2 <= killed_at < EPOCHS

    resumed = assert_ok(run_cli("train", "config.yaml", "--resume", cwd=project))
    assert "resuming after epoch" in resumed.stderr, show(resumed)
    assert not workdir.exists()
    same_model(project / "runs" / "rec", reference, tol=1e-6)


@pytest.mark.slow
def test_two_processes_train_the_one_process_recommender(movielens: Path, tmp_path: Path) -> None:  # noqa: F811
    """Two epochs: the test metrics and the first epoch's loss and validation NDCG match one process within 1e-5;
    the second epoch's within 1e-4 (measured: 3.5e-5 apart; see the report of issue 13, it is open whether that is
    only the drift below).

    The weights are not compared: AdamW turns the rounding of nearly cancelling gradients (rare items' embedding
    rows) into steps of the learning rate's size, so any change in the order of float sums (2 processes, or 1 vs
    2 torch threads in one process) moves them by more than 1e-5 within an epoch or two; that the loss and the
    gradient of a batch are the whole batch's is what the slice test above checks, to 1e-6."""
    # No dropout: each process would draw its own masks. A batch of 301 splits unevenly over 2 processes and
    # leaves a short last batch.
    config = recommendation_config(movielens, tmp_path / "project", batch_size=301, epochs=2)
    raw = yaml.safe_load(config.read_text())
    raw["hidden"]["dropout"] = 0.0
    config.write_text(yaml.safe_dump(raw))
    one = tmp_path / "one"
    lamina.train(config, output=one, verbose=False)
    two = tmp_path / "two"
    result = subprocess.run(torchrun(2, "train", config, "--output", two, "-q"), cwd=tmp_path, env=cli_env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    same_model(two, one, tol=1e-4, weights=False, epochs=2)
    assert_same_metrics(history(two)[0], history(one)[0], tol=1e-5, where="metrics.jsonl[0]")
    test_metrics = [{name: {k: v for k, v in m.items() if k not in TIMINGS} for name, m in model_files(f)[0]["test"].items()}
                    for f in (two, one)]
    assert_same_metrics(*test_metrics, tol=1e-5)
