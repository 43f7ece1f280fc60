"""What a study shows: a line per finished trial, the leaderboard, and the report section with Optuna's figures
(optimisation history, parameter importances, parallel coordinates) drawn with matplotlib."""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import optuna
from rich.console import Console
from rich.table import Table

from lamina import plots
from lamina.pages import img, paragraph, table_html

log = logging.getLogger("lamina")
State = optuna.trial.TrialState
SHOWN = 10  # leaderboard rows


def seconds(trial: optuna.trial.FrozenTrial) -> float:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return float("nan")
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def short(key: str) -> str:
    """``trainer.learning_rate`` → ``learning_rate``; a column's option keeps its column: ``color.embedding_dim``."""
    head, _, last = key.rpartition(".")
    if "[" in head:
        return f"{head[head.index('[') + 1:head.index(']')]}.{last}"
    return last


def shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def announcer(key: str) -> Any:
    """An Optuna callback printing one line per trial as it ends."""
    def callback(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        took = f"{seconds(trial):.1f} s"
        if trial.state == State.COMPLETE:
            params = ", ".join(f"{short(k)}={shown(v)}" for k, v in trial.params.items())
            print(f"trial {trial.number}: {key} {trial.value:.4f} ({took}; {params})", flush=True)
        elif trial.state == State.PRUNED:
            why = "stopped at the deadline" if trial.user_attrs.get("stopped") else \
                f"pruned after epoch {trial.last_step}"
            print(f"trial {trial.number}: {why} ({took})", flush=True)
        else:
            print(f"trial {trial.number}: failed: {trial.user_attrs.get('error', trial.state.name)}", flush=True)

    return callback


def ranked(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    done = study.get_trials(deepcopy=False, states=(State.COMPLETE,))
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(done, key=lambda t: -t.value if maximize else t.value)  # type: ignore[operator]


def counts(study: optuna.Study) -> str:
    trials = study.get_trials(deepcopy=False)
    found = {s: sum(t.state == s for t in trials) for s in State}
    parts = [f"{found[s]} {s.name.lower()}" for s in State if found[s]]
    return f"{len(trials)} trials ({', '.join(parts)})"


def leaderboard_rows(study: optuna.Study) -> tuple[list[str], list[list[Any]]]:
    best = ranked(study)[:SHOWN]
    keys = list(dict.fromkeys(k for t in best for k in t.params))
    header = ["rank", "trial", "score", "seconds", *(short(k) for k in keys)]
    rows = [[i + 1, t.number, t.value, round(seconds(t), 1), *(shown(t.params.get(k, "")) for k in keys)]
            for i, t in enumerate(best)]
    return header, rows


def print_leaderboard(study: optuna.Study, key: str) -> None:
    header, rows = leaderboard_rows(study)
    table = Table(title=f"leaderboard: {key} on validation, {counts(study)}")
    for name in header:
        table.add_column(key if name == "score" else name, justify="right")
    for row in rows:
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) and i == 2 else str(v) for i, v in enumerate(row)))
    Console(width=max(Console().width, 120)).print(table)


def _figure(title: str, draw: Any, study: optuna.Study, until: float, estimate: float = 0.0) -> str:
    """One of Optuna's matplotlib plots as an embedded PNG; a plot that cannot be drawn says why, and none is
    started that would end past ``until`` (the end of --time) by ``estimate`` (the last figure's seconds)."""
    if time.time() + estimate >= until:
        return paragraph(f"{title}: not drawn, --time was spent (`lamina tune --resume` with more time draws it)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            axes = draw(study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            figure.set_size_inches(8, 4)
            return img(plots.png(figure), title)
    except Exception as e:  # noqa: BLE001 - e.g. importances need two finished trials with varying values
        log.info("tune report: %s not drawn: %s", title, e)
        return paragraph(f"{title}: not drawn ({type(e).__name__}: {e})")


def charts() -> Any:
    """Optuna's matplotlib plots; imported before the search starts (seconds on a busy machine), so the time held
    back for the report is spent drawing."""
    plots.pyplot()
    from optuna.visualization import matplotlib

    return matplotlib


def report_section(study: optuna.Study, key: str, budget: str, until: float = float("inf")) -> str:
    draw = charts()

    header, rows = leaderboard_rows(study)
    folds = next((t.user_attrs["folds"] for t in study.trials if t.user_attrs.get("folds")), None)
    on = f"averaged over {folds} held-out folds" if folds else "on the validation split"
    parts = [paragraph(f"lamina tune: {counts(study)} within {budget}; trials scored by {key} {on} (Optuna: TPE "
                       "sampler, median pruner on each epoch's score)."),
             table_html([key if h == "score" else h for h in header], rows)]
    last = 0.0  # seconds the previous figure took: on a busy machine one can take several
    for title, plot in (("optimisation history", draw.plot_optimization_history),
                        ("parameter importances", draw.plot_param_importances),
                        ("parallel coordinates", draw.plot_parallel_coordinate)):
        began = time.time()
        parts.append(_figure(title, plot, study, until, last))
        last = time.time() - began
    return "".join(parts)
