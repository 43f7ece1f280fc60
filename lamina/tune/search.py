"""``lamina tune``: an Optuna study of a config's ``tune.space`` within ``--time``, then the best trial's model.

``runs/<name>.tune/`` holds the study (``study.db``, SQLite, unless ``--storage`` names another database),
``trials.csv``, ``best.yaml`` and ``best/``, the best trial's model directory with its ``report.html``. Workers
are processes (``--jobs``); machines that share a ``--storage`` URL join the same study.
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
import yaml

from lamina.budget import format_duration, parse_duration
from lamina.config import Config, dump_config, load_config, validate_config
from lamina.data.load import load_splits, resolve
from lamina.errors import LaminaError
from lamina.logs import quiet
from lamina.tune.clock import Deadline
from lamina.tune.keep import take
from lamina.tune.output import announcer, charts, print_leaderboard, ranked, report_section
from lamina.tune.space import check_space, current_values, default_space, with_values
from lamina.tune.trial import Job, objective_key, storage, work, worker

log = logging.getLogger("lamina")
DATA_KEYS = ("path", "train", "validation", "test")


@dataclass
class Tuned:
    study: optuna.Study
    folder: Path
    best_config: Path
    model_dir: Path


def write_section(path: Path, config: Config) -> None:
    """Append the default search space to the config file as its ``tune:`` section (its text is kept as is)."""
    lines = ["", "# lamina tune's search space: edit the ranges (low/high, log, integer), choices or fixed values.",
             "tune:", "  space:"]
    for key, entry in default_space(config).items():
        name = yaml.safe_dump({key: 0}, width=1000).strip().removesuffix(": 0")  # quoted only where YAML needs it
        value = yaml.safe_dump(entry, default_flow_style=True, sort_keys=False, width=1000).strip()
        lines.append(f"    {name}: {value}")
    with path.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _open_study(url: str, name: str, direction: str, resume: bool) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    try:
        db = storage(url)
        return optuna.create_study(study_name=name, storage=db, direction=direction, load_if_exists=resume), db
    except optuna.exceptions.DuplicatedStudyError:
        raise LaminaError(f"{url}: holds a study named {name!r} already; continue it with --resume, or remove it "
                          "(or set another name in the config)") from None
    except Exception as e:  # noqa: BLE001 - SQLAlchemy's many errors for a URL it cannot open
        first = str(e).splitlines()[0][:200] if str(e) else ""
        raise LaminaError(f"--storage {url}: cannot open the study database ({type(e).__name__}: {first})") from None


def _run_workers(db: optuna.storages.RDBStorage, job: Job, jobs: int, frames: Any, sources: Any, key: str) -> None:
    """One worker in this process, or ``jobs`` worker processes; each stops when no trial fits the budget."""
    # AdamW imports torch._dynamo on first use, seconds of imports: done here, once, not in every forked worker,
    # nor in the first trial (whose duration would inflate the study's estimate of a trial).
    import torch._dynamo  # noqa: F401

    if jobs == 1:
        work(job, frames, sources, announcer(key))
        return
    # Forked where the system can: a worker then starts in milliseconds with the data already read, where a fresh
    # interpreter would spend seconds importing torch and reading the data again.
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    threads = job.threads or max(1, (os.cpu_count() or 1) // jobs)
    # A database connection must not cross a fork (SQLite's locks are per process): close this process's pool.
    db.engine.dispose()
    workers = [context.Process(target=worker, args=(replace(job, worker=i, threads=threads), frames, sources))
               for i in range(jobs)]
    for process in workers:
        process.start()
    try:
        for process in workers:
            # Workers stop themselves at the deadline; the grace only covers a process that hangs.
            process.join(timeout=max(1.0, job.start + job.total - time.time()) + 30)
    finally:
        for process in workers:
            if process.is_alive():
                log.warning("a tune worker overran the budget: stopped")
                process.kill()
                process.join()
    failed = [p.exitcode for p in workers if p.exitcode]
    if failed:
        raise LaminaError(f"{len(failed)} of {jobs} tune workers failed (exit {failed[0]}); see their messages above")


def _relative_data(raw: dict[str, Any], base_dir: Path, folder: Path | None) -> dict[str, Any]:
    """The data paths resolved against the config's folder: relative to ``folder``, or absolute for None."""
    for key in DATA_KEYS:
        if raw["data"].get(key):
            path = resolve(raw["data"][key], base_dir).resolve()
            raw["data"][key] = os.path.relpath(path, folder.resolve()) if folder else str(path)
    return raw


def _best_model(study: optuna.Study, config: Config, space: Any, base_dir: Path, folder: Path,
                clock: Deadline) -> tuple[Path, Path]:
    """Write ``best.yaml`` (the config with the best trial's values) and put the best trial's model at
    ``folder/best``; trained again only when the trial ran on another machine (its model is not here)."""
    from lamina.run import run

    best = ranked(study)[0]
    fixed = {k: p.fixed for k, p in space.items() if p.fixed is not None}
    raw = with_values(config.model_dump(mode="json"), {**best.params, **fixed})
    best_yaml = folder / "best.yaml"
    best_yaml.write_text(dump_config(validate_config(_relative_data(copy.deepcopy(raw), base_dir, folder))),
                         encoding="utf-8")
    destination = folder / "best"
    if take(folder, best.number, destination):
        return best_yaml, destination
    final = _relative_data(raw, base_dir, None)
    final["tune"] = None  # trained as the trials were: cross-fitted where `trainer.folds` says so
    left = max(1.0, clock.end - clock.now() - clock.report_seconds)
    final["trainer"]["time_limit"] = min(left, final["trainer"]["time_limit"] or left)
    log.info("trial %d ran on another machine: training its config here", best.number)
    with quiet(logging.WARNING):
        run(validate_config(final), output=destination, verbose=False)
    return best_yaml, destination


def _config_and_space(path: Path) -> tuple[Config, dict[str, Any]]:
    """The config and its checked search space; the default space is written into the file first if it has none."""
    config = load_config(path)
    if config.task != "prediction":
        raise LaminaError(f"{path}: lamina tune searches prediction configs; task {config.task!r} is not supported yet")
    if config.tune is None:
        write_section(path, config)
        config = load_config(path)
        log.info("%s: wrote the default search space as its tune: section; edit it and rerun to change it", path)
    return config, check_space(config, str(path))


def tune(config_path: str | os.PathLike, budget: str = "10m", jobs: int = 1, storage_url: str | None = None,
         resume: bool = False, output_dir: str | os.PathLike = "runs", started: float | None = None,
         sampler: str = "tpe") -> Tuned:
    """Search ``config_path``'s ``tune.space`` for ``budget`` (e.g. "10m"); print the leaderboard; write best.yaml,
    the best trial's model directory and its report. ``started``: when the budget began (default: now);
    ``sampler``: "tpe", or "random" (random search, the baseline)."""
    try:
        total = parse_duration(budget)
    except ValueError as e:
        raise LaminaError(f"--time {budget!r}: {e}") from None
    started = started or time.time()
    if jobs < 1:
        raise LaminaError(f"--jobs {jobs}: give 1 or more worker processes")
    if sampler not in ("tpe", "random"):
        raise LaminaError(f"--sampler {sampler!r}: use tpe or random")
    path = Path(config_path)
    config, space = _config_and_space(path)
    name = config.name or path.stem
    folder = Path(output_dir) / f"{name}.tune"
    folder.mkdir(parents=True, exist_ok=True)
    url = storage_url or f"sqlite:///{(folder / 'study.db').resolve()}"
    base_dir = path.resolve().parent
    frames, sources = load_splits(config, base_dir)
    if not len(frames.get("validation", [])):
        raise LaminaError(f"{path}: lamina tune scores trials on the validation split, and it is empty; "
                          "give data.split.fractions a validation share or a data.validation file")
    key, direction = objective_key(config)
    charts()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial is ours (lamina.tune.output)
    study, db = _open_study(url, name, direction, resume)
    clock = Deadline(started, total, report=study.user_attrs.get("report_seconds"))
    if not study.trials and (start := current_values(config, space)) is not None:
        study.enqueue_trial(start)  # the config as written is trial 0: the search can only improve on it
    job = Job(str(path), url, name, str(folder), clock.start, total, clock.report, threads=config.trainer.threads,
              sampler=sampler)
    _run_workers(db, job, jobs, frames, sources, key)
    if not ranked(study):
        raise LaminaError(f"no trial finished within --time {budget}; give more time (one trial of this config "
                          "must train to the end)")
    study.trials_dataframe().to_csv(folder / "trials.csv", index=False)
    print_leaderboard(study, key)
    best_yaml, model_dir = _best_model(study, config, space, base_dir, folder, clock)
    began = time.time()
    _report(model_dir, study, key, format_duration(total), clock.end)
    study.set_user_attr("report_seconds", time.time() - began)  # the next session's estimate
    return Tuned(study, folder, best_yaml, model_dir)


def _report(model_dir: Path, study: optuna.Study, key: str, budget: str, until: float) -> None:
    """The best model's report.html with the search's section. Without the sections that need predictions
    (explanations cost more than a short budget holds): ``lamina report DIR --data FILE`` draws them."""
    from lamina.report import write_report

    try:
        write_report(model_dir, extra=[("Hyperparameter search", report_section(study, key, budget, until))])
    except Exception as e:  # noqa: BLE001 - the model directory is in place; the page is a bonus
        log.warning("report.html not written: %s: %s", type(e).__name__, e)
