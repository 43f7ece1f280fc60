"""``lamina compare``: the deep model and its classical counterparts, trained on the same split."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from lamina.compare.charts import print_comparison, write_comparison
from lamina.compare.features import family
from lamina.compare.models import counterparts, deep_row, require_modules
from lamina.compare import noise
from lamina.compare.verdict import headline, summarise

log = logging.getLogger("lamina")


def _check_requirements(parsed: Any) -> None:
    """Refuse before the deep model trains when the classical models of these inputs cannot run."""
    from lamina.preprocessor import Preprocessor

    prep = Preprocessor(parsed)
    if any(t.task is not None for t in prep.outputs):  # outputs read by the inputs' classical models
        require_modules(family([t.classical() for t in prep.inputs]).requires)


def _score_all(predictor: Any, frames: dict[str, pd.DataFrame], kept: dict, config: Any) -> None:
    deep_row(predictor, frames, 0.0, kept)
    counterparts(predictor, frames, config.trainer.seed, kept)


def compare(config_path: str | Path, output_dir: str | Path = "runs", out_dir: str | Path | None = None,
            data: pd.DataFrame | None = None, verbose: bool = True, cross_fit: bool | None = None
            ) -> dict[str, Path]:
    """Train the deep model (writing its model directory, as ``lamina train``) and the classical counterparts on the
    same split; print the table and a verdict with its interval (``lamina.compare.noise``: cross-fitted on every row
    for small data; ``cross_fit`` forces it on or off), write ``compare.json`` and ``compare.png`` (in ``out_dir``,
    default the model directory, whose ``report.html`` is rewritten to include them). A model may bring its own
    counterparts (``compared``: an anomaly detector's classical detectors on its split)."""
    from lamina.data.load import load_splits
    from lamina.run import as_config, train

    parsed, base_dir, _ = as_config(config_path)
    _check_requirements(parsed)
    started = time.perf_counter()
    model = train(parsed if data is not None else config_path, data=data, output_dir=output_dir, verbose=verbose)
    train_seconds = time.perf_counter() - started
    frames, sources = load_splits(parsed, base_dir, data)
    run_dir = Path(model.info["run_dir"])
    own = model.compared(frames, sources, train_seconds)
    if own is None:
        result = _usual(model, parsed, frames, train_seconds, cross_fit)
    else:
        scored = own["scored"]
        result = summarise(own["outputs"], own["rows"])
        result["noise"] = noise.intervals(own["outputs"], scored, own["kept"], headline,
                                          f"over the {len(scored)} labelled test rows")
    result["verdicts"].update({name: noise.verdict(name, found) for name, found in result["noise"].items()})
    paths = write_comparison(result, Path(out_dir) if out_dir else run_dir)
    if out_dir and Path(out_dir) != run_dir:
        write_comparison(result, run_dir)
    try:
        from lamina.report import write_report

        paths["report"] = write_report(run_dir, predictor=model, frames=frames)
    except Exception as e:  # the comparison stands without its report
        log.warning("report.html not written: %s", e)
    paths["run_dir"] = run_dir
    if verbose:
        print_comparison(result)
    return paths


def _usual(predictor: Any, parsed: Any, frames: dict[str, pd.DataFrame], train_seconds: float,
           cross_fit: bool | None) -> dict[str, Any]:
    """The deep model's row and the classical counterparts of its inputs and outputs, with the noise intervals."""
    predictor.preprocessor.set_cache_dir(None)
    kept: dict = {}
    rows = deep_row(predictor, frames, train_seconds, kept)
    rows += counterparts(predictor, frames, parsed.trainer.seed, kept)
    result = summarise(predictor.preprocessor.outputs, rows)
    result["noise"] = noise.assess(predictor, parsed, frames, kept, lambda p, f, k: _score_all(p, f, k, parsed),
                                   headline, cross_fit)
    return result
