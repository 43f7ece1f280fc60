"""data.streaming: a Parquet training file read a few row groups at a time. Under a memory limit (RLIMIT_DATA) that
the in-memory run of the same file cannot live with, ``python -m lamina train`` streams it to a good model; a
streamed run killed after an epoch resumes to the model of an uninterrupted one; a streamed config that asks for a
split of one file is a one-line error."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import assert_user_error, cli_env, run_cli, stop_after, write_yaml
from lamina.data.load import load_splits, open_stream
from lamina.run import as_config
from lamina.training import fit
from test_resume import assert_same_metrics, assert_same_weights

pytestmark = pytest.mark.slow

# RLIMIT_DATA caps the process's private writable memory (heap and anonymous mappings, where torch, NumPy and Arrow
# allocate) but, unlike RLIMIT_AS, not torch's large read-only and reserved mappings, so torch runs under it. An
# interpreter that imports Lamina and trains a 20,000-row table needs ~600 MiB of it on this machine.
LIMIT_MIB = 700
BIG_ROWS = 800_000


def write_shops(path: Path, rows: int, seed: int, group: int = 20_000) -> Path:
    """A learnable table made by a program: 8 standard-normal numbers and one of 40 shops decide ``label`` through
    a rule with an interaction and per-shop offsets, plus noise (a logistic model can't get all of it). Written one
    row group at a time, so making a file larger than memory needs no more memory than a row group."""
    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, group):
        n = min(group, rows - start)
        x = rng.standard_normal((n, 8))
        shop = rng.integers(0, 40, n)
        logit = 2 * x[:, 0] - 1.5 * x[:, 1] + x[:, 2] * x[:, 3] + np.sin(shop) + 0.5 * rng.standard_normal(n)
        table = pa.table({**{f"x{i}": x[:, i] for i in range(8)},
                          "shop": pa.array(np.char.add("shop", shop.astype(str))),
                          "label": np.where(logit > 0, "yes", "no")})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=group)
    assert writer is not None
    writer.close()
    return path


def shops_config(folder: Path, train: Path, streaming: bool, epochs: int = 1, **data: object) -> Path:
    valid = folder / "valid.parquet"
    if not valid.exists():
        write_shops(valid, 10_000, seed=1)
        write_shops(folder / "test.parquet", 10_000, seed=2)
    return write_yaml({
        "name": "shops",
        "data": {"train": str(train), "validation": str(valid), "test": str(folder / "test.parquet"),
                 "streaming": streaming, "fit_rows": 20_000, "shuffle_row_groups": 2, **data},
        "inputs": [*({"name": f"x{i}", "type": "number"} for i in range(8)), {"name": "shop", "type": "category"}],
        "outputs": [{"name": "label", "type": "binary"}],
        "hidden": {"depth": 2, "width": 64},
        "trainer": {"epochs": epochs, "batch_size": 2048, "learning_rate": 3e-3, "device": "cpu",
                    "early_stopping": {"patience": 0}},
    }, folder / ("stream.yaml" if streaming else "memory.yaml"))


def train_limited(config: Path, out: Path, limit_mib: int) -> tuple[int, str, float]:
    """``python -m lamina train`` under RLIMIT_DATA: exit code, stderr, and the process's peak RSS in MiB (wait4's
    rusage of this one child: RUSAGE_CHILDREN would mix in every earlier child of the test session)."""
    limit = limit_mib * 2**20

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    process = subprocess.Popen([sys.executable, "-m", "lamina", "train", str(config), "--output", str(out), "-q"],
                               cwd=config.parent, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, preexec_fn=cap)
    assert process.stderr is not None
    stderr = process.stderr.read()  # small; read before waiting so a full pipe cannot block the child
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, stderr, usage.ru_maxrss / 1024


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shops(tmp_path_factory.mktemp("big") / "train.parquet", BIG_ROWS, seed=0)


def test_streaming_trains_under_a_memory_limit_the_in_memory_run_fails(big: Path, tmp_path: Path) -> None:
    stream, memory = shops_config(tmp_path, big, True), shops_config(tmp_path, big, False)

    code, stderr, _ = train_limited(memory, tmp_path / "memory", LIMIT_MIB)
    assert code != 0, "the in-memory run must not fit under the limit, or the test proves nothing"
    assert not (tmp_path / "memory").exists()

    code, stderr, peak = train_limited(stream, tmp_path / "streamed", LIMIT_MIB)
    assert code == 0, stderr[-3000:]
    info = json.loads((tmp_path / "streamed" / "lamina.json").read_text())
    test = info["metrics"]["test"]["label"]
    assert test["rows"] == 10_000 and test["roc_auc"] > 0.97, test
    assert info["metrics"]["train"]["label"]["rows"] == 20_000, "train metrics are scored on the fit sample"
    history = [json.loads(line) for line in (tmp_path / "streamed" / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 1

    # The baseline, measured here: the same in-memory run without a limit. Peak RSS also counts the read-only
    # mappings RLIMIT_DATA leaves out (torch's libraries), whose size depends on the machine, so the streamed peak is
    # compared with it rather than with the limit; streaming must save a clear share of it (it saved ~40 % here).
    code, stderr, in_memory_peak = train_limited(memory, tmp_path / "memory", 1 << 20)
    assert code == 0, stderr[-3000:]
    print(f"\n{BIG_ROWS:,} rows, {big.stat().st_size / 2**20:.0f} MiB of Parquet; RLIMIT_DATA {LIMIT_MIB} MiB: in memory "
          f"failed (unlimited, its peak RSS is {in_memory_peak:.0f} MiB), streamed peak RSS {peak:.0f} MiB "
          f"({peak / in_memory_peak:.2f} of it), test ROC-AUC {test['roc_auc']:.4f}")
    assert peak < 0.85 * in_memory_peak


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60,000 rows in 13 row groups of 5,000 (the last short): windows, the carried remainder and the last batch."""
    return write_shops(tmp_path_factory.mktemp("small") / "train.parquet", 62_000, seed=3, group=5_000)


def test_a_streamed_run_resumes_to_the_uninterrupted_model(small: Path, tmp_path: Path) -> None:
    config, base_dir, _ = as_config(shops_config(tmp_path, small, True, epochs=4, fit_rows=7_000))
    frames, sources = load_splits(config, base_dir)
    assert len(frames["train"]) == 7_000
    whole = fit(config, frames, sources, workdir=tmp_path / "whole", verbose=False,
                stream=open_stream(config, base_dir))
    assert whole.predictor.metrics["test"]["label"]["roc_auc"] > 0.95
    workdir = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        fit(config, frames, sources, workdir=workdir, verbose=False, on_epoch=stop_after(2),
            stream=open_stream(config, base_dir))
    resumed = fit(config, frames, sources, workdir=workdir, resume=True, verbose=False,
                  stream=open_stream(config, base_dir))
    assert_same_metrics(resumed.predictor.metrics, whole.predictor.metrics)
    assert_same_weights(resumed.predictor.network.state_dict(), whole.predictor.network.state_dict())
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert drop(resumed.history) == drop(whole.history)


def test_every_row_is_trained_once_per_epoch(small: Path, tmp_path: Path) -> None:
    import torch

    config, base_dir, _ = as_config(shops_config(tmp_path, small, True))
    stream = open_stream(config, base_dir)
    seen: list[torch.Tensor] = []

    def to_tensors(frame):  # the rows' x0 values identify them
        x = torch.tensor(frame["x0"].to_numpy())
        return {"x": x}, {"y": x}

    sizes = []
    for inputs, targets, rows, total in stream.batches(to_tensors, 2048, torch.Generator().manual_seed(0)):
        seen.append(inputs["x"])
        sizes.append(rows)
        assert rows == total == len(inputs["x"])
    everything = torch.from_numpy(pq.read_table(small, columns=["x0"]).column(0).to_numpy())
    assert torch.equal(torch.sort(torch.cat(seen)).values, torch.sort(everything).values)
    assert all(s == 2048 for s in sizes[:-1]) and 1 < sizes[-1] <= 2049


def test_streaming_needs_separate_files(tmp_path: Path) -> None:
    write_yaml({"data": {"path": "x.parquet", "streaming": True}, "inputs": [{"name": "a", "type": "number"}],
                "outputs": [{"name": "b", "type": "number"}]}, tmp_path / "config.yaml")
    assert_user_error(run_cli("train", "config.yaml", cwd=tmp_path), "data.streaming", "data.train")


def test_streaming_needs_parquet(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a,b\n1,2\n3,4\n")
    write_yaml({"data": {"train": "train.csv", "streaming": True}, "inputs": [{"name": "a", "type": "number"}],
                "outputs": [{"name": "b", "type": "number"}]}, tmp_path / "config.yaml")
    assert_user_error(run_cli("train", "config.yaml", cwd=tmp_path), "train.csv", "Parquet")


def test_two_processes_stream_their_own_row_groups(small: Path, tmp_path: Path) -> None:
    """Under torchrun each rank reads its own row groups; the ranks take the same number of steps (the epoch ends
    when one runs out) and train a good model together."""
    from lamina.distributed import torchrun_command

    config = shops_config(tmp_path, small, True, epochs=3, fit_rows=7_000)
    out = tmp_path / "ddp"
    result = subprocess.run(torchrun_command(2, ["train", str(config), "--output", str(out), "-q"]), cwd=tmp_path,
                            env=cli_env(), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((out / "lamina.json").read_text())
    assert info["metrics"]["test"]["label"]["roc_auc"] > 0.95, info["metrics"]["test"]
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1, 2, 3]
