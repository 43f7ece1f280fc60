"""The ``lamina`` command. Heavy modules are imported inside each command so ``lamina --help`` starts fast."""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

app = typer.Typer(
    help="Lamina: from raw data to a trained, evaluated deep network.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)


def _setup_logging() -> None:
    logger = logging.getLogger("lamina")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command with Lamina's error contract: bad input → one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx")
        debug = bool(ctx is not None and ctx.obj and ctx.obj.get("debug"))
        _setup_logging()
        from lamina.errors import LaminaError

        try:
            return fn(*args, **kwargs)
        except LaminaError as e:
            if debug:
                raise
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            if debug:
                raise
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as e:  # a bug in Lamina, not the user's fault: say so, keep the traceback behind --debug
            if debug:
                raise
            typer.echo(f"internal error: {type(e).__name__}: {e} (run with --debug for the traceback, and report it)", err=True)
            raise typer.Exit(1) from None

    return wrapper


@app.callback()
def main_options(ctx: typer.Context, debug: bool = typer.Option(False, "--debug", help="Show full tracebacks.")) -> None:
    ctx.obj = {"debug": debug}


@app.command()
@command
def init(
    ctx: typer.Context,
    data: Path = typer.Argument(..., help="A CSV, TSV, Parquet or JSONL file."),
    target: list[str] = typer.Option(..., "--target", "-t", help="Column to predict (repeat for several)."),
    output: Path = typer.Option(Path("config.yaml"), "--output", "-o", help="Where to write the config."),
    name: Optional[str] = typer.Option(None, help="Run name (default: the data file's name)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing config."),
) -> None:
    """Write a config for DATA, with each column's type inferred from its values."""
    from lamina.infer import init_config

    path, inferred = init_config(data, target, output, force=force, name=name)
    kinds = ", ".join(f"{c} ({k})" for c, k in inferred.outputs)
    typer.echo(f"wrote {path}: {len(inferred.inputs)} inputs → {kinds}")
    for note in inferred.notes:
        typer.echo(f"  {note}")
    typer.echo(f"next: lamina train {path}")


@app.command()
@command
def train(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="The YAML config (see `lamina init`)."),
    output_dir: Path = typer.Option(Path("runs"), "--output-dir", help="Folder of model directories."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Exact model directory (replaced if present)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Train the model CONFIG describes; write its model directory and print its metrics."""
    from lamina.evaluate import print_metrics
    from lamina.run import as_config, incomplete_dir, train as run_training

    try:
        model = run_training(config, output_dir=output_dir, output=output, resume=resume, verbose=not quiet)
    except KeyboardInterrupt:
        _, _, name = as_config(config)
        where = incomplete_dir(output.parent if output else output_dir, output.name if output else name)
        typer.echo(f"interrupted: the last finished epoch is saved in {where}; "
                   f"continue with `lamina train {config} --resume`", err=True)
        raise typer.Exit(130) from None
    print_metrics(model.metrics)
    typer.echo(f"model directory: {model.info['run_dir']} (best epoch {model.info['best_epoch']} of {model.info['epochs_run']})")


@app.command()
@command
def evaluate(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="A model directory written by `lamina train`."),
    data: Path = typer.Argument(..., help="A labelled file with the model's input and target columns."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the metrics as JSON here."),
) -> None:
    """Score a trained model on any labelled file."""
    import json

    from lamina.evaluate import print_metrics
    from lamina.store import load

    metrics = load(model_dir).evaluate(str(data))
    print_metrics({str(data): metrics})
    if json_out:
        json_out.write_text(json.dumps(metrics, indent=2), encoding="utf-8")


@app.command()
@command
def predict(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="A model directory written by `lamina train`."),
    data: Path = typer.Argument(..., help="A file with the model's input columns."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="CSV, TSV, Parquet or JSONL; default: CSV on stdout."),
    keep: list[str] = typer.Option([], "--keep", "-k", help="Input column to copy into the output (repeatable), e.g. an ID."),
) -> None:
    """Predict for every row of DATA: each output's value and class probabilities."""
    from lamina.data.read import read_table
    from lamina.data.write import write_table
    from lamina.errors import LaminaError
    from lamina.store import load

    frame = read_table(data)
    missing = [k for k in keep if k not in frame.columns]
    if missing:
        raise LaminaError(f"{data}: --keep column {missing[0]!r} not found")
    predictions = load(model_dir).predict(frame, source=str(data))
    clash = [k for k in keep if k in predictions.columns]
    if clash:
        raise LaminaError(f"{data}: --keep column {clash[0]!r} has the name of a prediction column; "
                          "rename it in the file, or use `lamina evaluate` to compare predictions with labels")
    if keep:
        predictions = frame[keep].join(predictions)
    if output is None:
        predictions.to_csv(sys.stdout, index=False)
    else:
        write_table(predictions, output)
        typer.echo(f"wrote {len(predictions)} predictions to {output}", err=True)


@app.command()
@command
def runs(
    ctx: typer.Context,
    output_dir: Path = typer.Argument(Path("runs"), help="Folder of model directories."),
) -> None:
    """List the model directories in a folder with their main metric."""
    from lamina.evaluate import print_runs

    print_runs(output_dir)


def main() -> None:
    app()
