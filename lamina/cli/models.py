"""Train and use a model: ``train``, ``tune``, ``evaluate``, ``predict``, ``runs``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from lamina.cli.base import app, command


@app.command()
@command
def train(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="The YAML config (see `lamina init`)."),
    output_dir: Path = typer.Option(Path("runs"), "--output-dir", help="Folder of model directories."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Exact model directory (replaced if present)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    nproc: int = typer.Option(1, "--nproc", help="Train data-parallel on N processes on this machine (torchrun: gloo on CPU, NCCL on GPUs)."),
) -> None:
    """Train the model CONFIG describes; write its model directory and print its metrics."""
    from lamina import distributed
    from lamina.evaluate import print_metrics
    from lamina.api import write_run_report
    from lamina.run import as_config, incomplete_dir, run as run_training

    if nproc != 1:
        distributed.launch(nproc, sys.argv[1:])  # re-executes under torch.distributed.run
    try:
        trained = run_training(config, output_dir=output_dir, output=output, resume=resume, verbose=not quiet)
    except KeyboardInterrupt:
        if not distributed.is_main():
            raise typer.Exit(130) from None
        _, _, name = as_config(config)
        where = incomplete_dir(output.parent if output else output_dir, output.name if output else name)
        typer.echo(f"interrupted: the last finished epoch is saved in {where}; "
                   f"continue with `lamina train {config} --resume`", err=True)
        raise typer.Exit(130) from None
    if not distributed.is_main():
        return  # rank 0 writes the report and prints the metrics
    write_run_report(trained)
    model = trained.model
    if getattr(model, "task", None) == "recommendation":
        from lamina.recommend.commands import print_recommendation_metrics

        print_recommendation_metrics(model.metrics["test"], model.info["protocol"])
    else:
        print_metrics(model.metrics)
    typer.echo(f"model directory: {model.info['run_dir']} (best epoch {model.info['best_epoch']} of {model.info['epochs_run']})")


@app.command()
@command
def tune(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="The YAML config; its tune: section is the search space (written if absent)."),
    time: str = typer.Option("10m", "--time", help="The whole budget, best model's training included: '90s', '10m', '1h'."),
    jobs: int = typer.Option(1, "--jobs", help="Trials at once on this machine (worker processes)."),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna database URL shared by machines; default: SQLite in the run folder."),
    resume: bool = typer.Option(False, "--resume", help="Continue the study, keeping its finished trials."),
    output_dir: Path = typer.Option(Path("runs"), "--output-dir", help="Folder of the study folder <name>.tune."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe (Optuna's TPE), or random (random search)."),
) -> None:
    """Search CONFIG's hyperparameters within --time: leaderboard, best.yaml, and the best model trained."""
    import time as wall

    started = wall.time()  # the budget counts the imports below (seconds, on a busy machine)
    from lamina.tune import command as tune_command

    tune_command(config, time, jobs, storage, resume, output_dir, started, sampler)


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

    from lamina.data.write import check_output_file
    from lamina.evaluate import print_metrics
    from lamina.store import load

    if json_out:
        check_output_file(json_out, formats=(".json",))
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
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="CSV, TSV, Parquet or JSONL; default: CSV on stdout. A folder: predictions.csv and each output's files (a mask PNG per image)."),
    keep: list[str] = typer.Option([], "--keep", "-k", help="Input column to copy into the output (repeatable), e.g. an ID."),
    runtime: str = typer.Option("torch", "--runtime", help="torch or onnx (ONNX Runtime on model.onnx; see `lamina export`)."),
) -> None:
    """Predict for every row of DATA: each output's value and class probabilities."""
    from lamina.data.read import read_table
    from lamina.data.write import check_output_file, write_table
    from lamina.errors import LaminaError
    from lamina.export import load

    if output is not None and not output.suffix:  # a folder: files per row (masks) and tables; a.csv/ is an error
        written = load(model_dir, runtime).predict_files(read_table(data), output, source=str(data))
        typer.echo(f"wrote {', '.join(p.name for p in written)} into {output}", err=True)
        return
    if output is not None:
        check_output_file(output)
    frame = read_table(data)
    missing = [k for k in keep if k not in frame.columns]
    if missing:
        raise LaminaError(f"{data}: --keep column {missing[0]!r} not found")
    predictions = load(model_dir, runtime).predict(frame, source=str(data))
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
