"""``lamina tune`` on breast cancer: a short study with two workers that holds its budget and ends at least as good
as the config it started from (trained in the same test run), a killed study resumed with its trials, and bad
search spaces refused with one line."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from conftest import assert_ok, assert_user_error, cli_env, lamina_command, read_yaml, run_cli, show, write_yaml
from lamina.config import load_config, validate_config
from lamina.errors import LaminaError
from lamina.inputs import INPUT_TYPES
from lamina.tune.clock import REPORT_SECONDS, Deadline
from lamina.tune.search import write_section
from lamina.tune.space import check_space, default_space
from lamina.tune.trial import storage

BUDGET = 45  # seconds: a short tune; the report's share is held back from it


@pytest.fixture
def project(tmp_path: Path, cancer_project: Path) -> Path:
    """A copy of the cancer project (its config is what `cancer_model` was trained from), to tune in."""
    (tmp_path / "breast_cancer.csv").write_bytes((cancer_project / "breast_cancer.csv").read_bytes())
    (tmp_path / "config.yaml").write_text((cancer_project / "config.yaml").read_text(encoding="utf-8"),
                                          encoding="utf-8")
    return tmp_path


def study_of(project: Path) -> optuna.Study:
    return optuna.load_study(study_name="breast_cancer",
                             storage=storage(f"sqlite:///{project / 'runs' / 'breast_cancer.tune' / 'study.db'}"))


def complete(study: optuna.Study) -> dict[int, tuple[float, dict]]:
    return {t.number: (t.value, t.params) for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}


def best_val_loss(model_dir: Path) -> float:
    lines = (model_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return min(json.loads(line)["val_loss"] for line in lines if line.strip())


# --- the search space --------------------------------------------------------------------------------------------


def test_default_space_asks_each_type_and_is_written_as_an_editable_section(project: Path) -> None:
    config_path = project / "config.yaml"
    raw = read_yaml(config_path)
    raw["inputs"][0]["type"] = "category"  # a type with a space of its own
    write_yaml(raw, config_path)
    config = load_config(config_path)
    space = default_space(config)
    column = raw["inputs"][0]["name"]
    own = {k.rpartition(".")[2]: v for k, v in space.items() if k.startswith(f"inputs[{column}].")}
    assert own == INPUT_TYPES["category"].tune_space() and own
    assert {"hidden.width", "hidden.depth", "hidden.dropout", "trainer.learning_rate", "trainer.weight_decay",
            "trainer.batch_size"} <= set(space)
    text_before = config_path.read_text(encoding="utf-8")
    write_section(config_path, config)
    assert config_path.read_text(encoding="utf-8").startswith(text_before)  # the user's text is kept as it was
    written = load_config(config_path)
    assert set(written.tune.space) == set(space)
    assert check_space(written, "config.yaml") == written.tune.space


@pytest.mark.parametrize("entry, mentions", [
    ({"hidden.dropout": {"low": 0.0, "high": 1.5}}, ["tune.space.hidden.dropout", "1.5"]),
    ({"hidden.width": {"low": 64, "high": 16, "integer": True}}, ["tune.space.hidden.width", "low < high"]),
    ({"trainer.learning_rate": {"low": 0.0, "high": 0.1, "log": True}}, ["tune.space.trainer.learning_rate", "log"]),
    ({"hidden.widht": {"low": 16, "high": 64}}, ["tune.space.hidden.widht", "no such key"]),
    ({"inputs[nope].options.embedding_dim": {"choices": [8]}}, ["inputs[nope].options.embedding_dim"]),
    ({"hidden.width": {"low": 16, "high": 64, "choices": [1]}}, ["tune.space.hidden.width"]),
])
def test_an_invalid_search_space_is_one_error_naming_the_key(project: Path, entry: dict, mentions: list[str]) -> None:
    raw = read_yaml(project / "config.yaml")
    raw["tune"] = {"space": entry}
    with pytest.raises(LaminaError) as error:
        check_space(validate_config(raw, source="config.yaml"), "config.yaml")
    for mention in mentions:
        assert mention in str(error.value)
    assert "\n" not in str(error.value)


def test_the_cli_refuses_an_invalid_range_with_one_line(project: Path) -> None:
    raw = read_yaml(project / "config.yaml")
    raw["tune"] = {"space": {"hidden.dropout": {"low": 0.2, "high": 1.5}}}
    write_yaml(raw, project / "config.yaml")
    assert_user_error(run_cli("tune", "config.yaml", "--time", "20s", cwd=project), "tune.space.hidden.dropout")
    assert not (project / "runs" / "breast_cancer.tune" / "best").exists()


def test_no_trial_starts_that_would_end_past_the_search() -> None:
    clock = Deadline(start=0.0, total=100.0, now=lambda: 70.0)
    assert clock.search_end() == 100.0 - REPORT_SECONDS
    assert clock.may_start(100.0 - REPORT_SECONDS - 71.0) and not clock.may_start(100.0 - REPORT_SECONDS - 69.0)
    assert Deadline(0.0, 100.0, report=40.0, now=lambda: 40.0).search_end() == 50.0  # an earlier session's report


# --- end to end ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_study_resumes_with_two_workers_within_its_budget_and_beats_the_default(
        project: Path, cancer_model: Path) -> None:
    # 1. A study killed (as a crash or a lost machine would) once it has finished two trials.
    process = subprocess.Popen(lamina_command("tune", "config.yaml", "--time", "2m"), cwd=project, env=cli_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    finished: dict[int, tuple[float, dict]] = {}
    db, study = project / "runs" / "breast_cancer.tune" / "study.db", None
    try:
        deadline = time.time() + 120
        while len(finished) < 2 and time.time() < deadline and process.poll() is None:
            time.sleep(1.0)
            try:
                if study is None and db.exists():
                    study = study_of(project)
                finished = complete(study) if study is not None else {}
            except KeyError:  # the database is there, the study not yet
                pass
    finally:
        process.send_signal(signal.SIGKILL)
        out = process.communicate()[0]
    assert len(finished) >= 2, out
    folder = project / "runs" / "breast_cancer.tune"
    assert not (folder / "best").exists()
    assert "tune:" in (project / "config.yaml").read_text(encoding="utf-8")  # the space, written for editing
    before = complete(study_of(project))

    # 2. Resumed with two workers and a short budget.
    started = time.time()
    result = assert_ok(run_cli("tune", "config.yaml", "--time", f"{BUDGET}s", "--jobs", "2", "--resume",
                               cwd=project, timeout=4 * BUDGET))
    wall = time.time() - started
    output = result.stdout + result.stderr
    assert "locked" not in output and "error" not in output.lower(), show(result)
    assert "leaderboard: val_loss" in result.stdout, show(result)
    study = study_of(project)
    kept = complete(study)
    assert all(kept[n] == before[n] for n in before), show(result)  # every finished trial is still there
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    new = [t for t in study.get_trials(states=states) if t.number not in before and t.datetime_start.timestamp() > started]
    assert new, show(result)  # and the study went on
    # Two trials ran at once: their intervals overlap.
    assert any(a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete
               for a in new for b in new if a.number < b.number), [(t.datetime_start, t.datetime_complete) for t in new]
    # The budget: no trial ran past the search's end, and the work (the report is written last) ended within a
    # few percent of --time, counted from the command's start. The interpreter's exit after it is not counted. The
    # report's reserve is an estimate: on a loaded machine the report may overrun it, by what the study records
    # (its measured seconds), and by that alone.
    end = max(t.datetime_complete for t in new).timestamp()
    assert end <= started + BUDGET - REPORT_SECONDS + 1.0, (end - started, wall)
    written = (folder / "best" / "report.html").stat().st_mtime
    overrun = max(0.0, study.user_attrs["report_seconds"] - REPORT_SECONDS)
    assert written - started <= 1.05 * BUDGET + overrun, (written - started, wall, study.user_attrs)

    # 3. The best: a config that loads, its model directory with the search in its report, at least as good on
    # validation as the default config trained in this run (the default is the study's first trial).
    best = load_config(folder / "best.yaml")
    assert best.tune is not None and best.data.path
    assert study.trials[0].params["hidden.width"] == read_yaml(project / "config.yaml")["hidden"]["width"]
    assert best_val_loss(folder / "best") <= best_val_loss(cancer_model) * (1 + 1e-4)
    page = (folder / "best" / "report.html").read_text(encoding="utf-8")
    search = page[page.index("Hyperparameter search"):]
    for figure in ("optimisation history", "parameter importances", "parallel coordinates"):
        assert f'<img alt="{figure}"' in search, figure
    # Without --resume a second tune refuses to mix into the study.
    assert_user_error(run_cli("tune", "config.yaml", "--time", "20s", cwd=project), "--resume")


@pytest.mark.slow
def test_a_trial_on_small_data_is_scored_out_of_fold_as_train_would_fit_it(project: Path) -> None:
    """On a few hundred rows `lamina train` cross-fits; a trial does too, and its score is the mean over the k
    held-out folds of each network's best validation loss (not one small validation split's); the pruner sees only
    fold 1's epochs, so trials are compared step by step on the same network."""
    from lamina.data.load import load_splits
    from lamina.tune.trial import _reporter, _train

    raw = read_yaml(project / "config.yaml")
    raw["trainer"].update(folds=3, epochs=3)
    config = validate_config(raw)
    frames, sources = load_splits(config, project)
    study = optuna.create_study()
    trial = study.ask()
    on_epoch = _reporter(trial, "val_loss", Deadline(time.time(), 3600.0), until=time.time() + 3600.0)
    fitted, value, facts = _train(config, frames, sources, 3, on_epoch, "val_loss")
    records = on_epoch.records
    assert sorted(records) == [1, 2, 3] and facts["folds"] == 3 and fitted.predictor.info["folds"]["k"] == 3
    best = [min(r["val_loss"] for r in fold.values()) for fold in records.values()]
    assert value == pytest.approx(sum(best) / 3)
    assert sorted(study.trials[0].intermediate_values) == sorted(records[1])
    assert trial.study.trials[0].intermediate_values == {e: r["val_loss"] for e, r in records[1].items()}
