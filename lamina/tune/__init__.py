"""``lamina tune``: search a config's hyperparameters with Optuna within a time budget (``lamina.tune.search``).

>>> lamina.tune.tune("config.yaml", budget="10m")    # doctest: +SKIP
"""

from __future__ import annotations

import os

from lamina.tune.search import Tuned, tune

__all__ = ["Tuned", "tune", "command"]


def command(config: str | os.PathLike, budget: str, jobs: int, storage: str | None, resume: bool,
            output_dir: str | os.PathLike, started: float | None = None, sampler: str = "tpe") -> None:
    """What ``lamina tune`` prints after the leaderboard: where the best config and its model are."""
    try:
        tuned = tune(config, budget, jobs, storage, resume, output_dir, started, sampler)
    except KeyboardInterrupt:
        print(f"interrupted: the finished trials are kept; continue with `lamina tune {config} --resume`",
              flush=True)
        raise
    print(f"best config: {tuned.best_config}")
    print(f"model directory: {tuned.model_dir} (report.html there has the search's figures)")
