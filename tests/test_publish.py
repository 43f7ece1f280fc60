"""Publishing a model directory over an older one: ``lamina.save`` and ``lamina train -o DIR`` both go through
``lamina.store.publish``. A process SIGKILLed before each of publishing's file-system steps in turn (renames,
exchanges, each file deleted) leaves the old model or the new one whole under the name; the next ``load`` cleans or
puts back the copy moved aside. Both the atomic-exchange path and the rename-aside path of systems without one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import lamina
from conftest import cli_env
from lamina.store import INFO, WEIGHTS, aside

# A child interpreter imports Lamina once, then forks one process per job (as conftest's fork server does, so a job
# costs no imports). The forked process patches every file-system step publishing takes so that the k-th one
# (counted from the moment ``publish`` is entered) SIGKILLs it before it happens, then publishes; kill_at 0 never
# kills and writes how many steps there were.
KILLER = r"""
import json, os, shutil, signal, sys
import pandas as pd
import lamina, lamina.run, lamina.store as store

def run(job):
    steps = {"armed": False, "count": 0}

    def step(fn):
        def counted(*args, **kwargs):
            if steps["armed"]:
                steps["count"] += 1
                if steps["count"] == job["kill_at"]:
                    os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kwargs)
        return counted

    for name in ("replace", "rename", "unlink", "rmdir"):
        setattr(os, name, step(getattr(os, name)))
    store._exchange = step((lambda a, b: False) if job["no_exchange"] else store._exchange)
    real_publish = store.publish

    def publish(staging, destination):
        steps["armed"] = True
        real_publish(staging, destination)
        steps["armed"] = False

    store.publish = lamina.run.publish = publish
    if job["train"]:
        lamina.train(job["config"], data=pd.read_csv(job["data"]), output=job["destination"], verbose=False,
                     report=False)
    else:
        lamina.save(lamina.load(job["model"]), job["destination"])
    with open(job["steps_file"], "w") as f:
        f.write(str(steps["count"]))

for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            run(json.loads(line))
            code = 0
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


class Killer:
    """The child interpreter that runs publishing jobs, each in a fresh fork."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", KILLER], env=cli_env(), text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def run(self, job: dict[str, Any], kill_at: int) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({**job, "kill_at": kill_at}) + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        assert reply, "the publishing child died"
        return int(reply)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def killer() -> Any:
    server = Killer()
    yield server
    server.close()


def which_model(folder: Path, old: bytes, new: bytes) -> str:
    """'old' or 'new' when ``folder`` holds that model whole (readable lamina.json, the weights of one of them)."""
    assert (folder / INFO).is_file() and (folder / WEIGHTS).is_file(), sorted(p.name for p in folder.iterdir())
    json.loads((folder / INFO).read_text(encoding="utf-8"))
    weights = (folder / WEIGHTS).read_bytes()
    assert weights in (old, new), "the weights are neither the old model's nor the new one's"
    return "old" if weights == old else "new"


def tiny_config(seed: int) -> dict[str, Any]:
    return {"name": "tiny", "inputs": [{"name": c, "type": "number"} for c in ("mean radius", "mean texture")],
            "outputs": [{"name": "diagnosis", "type": "category"}],
            "trainer": {"epochs": 1, "batch_size": 128, "device": "cpu", "seed": seed}}


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory, cancer_frame: pd.DataFrame) -> dict[str, Path]:
    """Two small models with different weights, trained once: the one in place and the one replacing it."""
    folder = tmp_path_factory.mktemp("publish")
    data = cancer_frame[["mean radius", "mean texture", "diagnosis"]]
    data.to_csv(folder / "data.csv", index=False)
    paths = {"data": folder / "data.csv"}
    for label, seed in (("old", 1), ("new", 2)):
        model = lamina.train(tiny_config(seed), data=data, output=folder / label, verbose=False, report=False)
        paths[label] = Path(model.info["run_dir"])
    assert (paths["old"] / WEIGHTS).read_bytes() != (paths["new"] / WEIGHTS).read_bytes()
    return paths


def check_every_kill(killer: Killer, job: dict[str, Any], old_model: Path, new_bytes: bytes | None) -> list[str]:
    """Publish killed before each step in turn; after each kill the name (once ``load`` has recovered it, on the
    rename-aside path) holds a whole model and nothing is left aside. Returns which model each kill left."""
    destination = Path(job["destination"])
    old = (old_model / WEIGHTS).read_bytes()

    def reset() -> None:
        for leftover in (destination, aside(destination)):
            shutil.rmtree(leftover, ignore_errors=True)
        shutil.copytree(old_model, destination)

    reset()
    steps_file = Path(job["steps_file"])
    assert killer.run(job, 0) == 0
    total = int(steps_file.read_text())
    new = new_bytes or (destination / WEIGHTS).read_bytes()  # a trained model's weights: what the whole run wrote
    assert which_model(destination, old, new) == "new"
    assert total >= 3, f"publishing took {total} steps: the test would not time kills between them"
    left = []
    for kill_at in range(1, total + 1):
        reset()
        code = killer.run(job, kill_at)
        assert code == -9, f"step {kill_at}: exit {code} (see the captured stderr)"
        if not job["no_exchange"]:  # an atomic exchange: a whole model under the name at every instant
            which_model(destination, old, new)
        lamina.load(destination)  # recovers an aside copy, if the kill left one
        assert not aside(destination).exists(), f"step {kill_at}: {aside(destination)} left after load"
        left.append(which_model(destination, old, new))
    assert left[0] == "old" and left[-1] == "new", left
    return left


@pytest.mark.parametrize("no_exchange", [False, True], ids=["exchange", "rename-aside"])
def test_a_save_killed_at_any_step_leaves_a_whole_model(killer: Killer, two_models: dict[str, Path], tmp_path: Path,
                                                       no_exchange: bool) -> None:
    job = {"train": False, "model": str(two_models["new"]), "destination": str(tmp_path / "model"),
           "no_exchange": no_exchange, "steps_file": str(tmp_path / "steps")}
    left = check_every_kill(killer, job, two_models["old"], (two_models["new"] / WEIGHTS).read_bytes())
    print(f"\n{len(left)} kills: {left}")


@pytest.mark.slow  # trains once per kill; the rename-aside path is the save test's, with the same publish
def test_train_over_a_model_killed_at_any_step_of_publishing_leaves_a_whole_model(
        killer: Killer, two_models: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "config.json"  # JSON is YAML: the config file lamina.train reads
    config.write_text(json.dumps(tiny_config(3)), encoding="utf-8")
    job = {"train": True, "config": str(config), "data": str(two_models["data"]),
           "destination": str(tmp_path / "model"), "no_exchange": False, "steps_file": str(tmp_path / "steps")}
    left = check_every_kill(killer, job, two_models["old"], None)
    print(f"\n{len(left)} kills: {left}")


def test_publish_puts_back_a_model_left_aside_and_deletes_a_stale_one(two_models: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    destination = tmp_path / "model"
    shutil.copytree(two_models["old"], aside(destination))  # killed between the two renames: only the aside copy
    assert lamina.load(destination).info["run_dir"] == str(destination)
    assert (destination / WEIGHTS).read_bytes() == (two_models["old"] / WEIGHTS).read_bytes()
    shutil.copytree(two_models["new"], aside(destination))  # killed while deleting the replaced model
    lamina.save(lamina.load(two_models["new"]), destination)
    assert not aside(destination).exists()
    assert (destination / WEIGHTS).read_bytes() == (two_models["new"] / WEIGHTS).read_bytes()
