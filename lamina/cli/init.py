"""``lamina init``: a config inferred from the data, for each task."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lamina.cli.base import app, command


@app.command()
@command
def init(
    ctx: typer.Context,
    data: Path = typer.Argument(..., help="A CSV, TSV, Parquet or JSONL file, or a packet capture (read as flows)."),
    target: list[str] = typer.Option([], "--target", "-t", help="Column to predict (repeat for several)."),
    output: Path = typer.Option(Path("config.yaml"), "--output", "-o", help="Where to write the config."),
    name: Optional[str] = typer.Option(None, help="Run name (default: the data file's name)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing config."),
    task: str = typer.Option("prediction", "--task", help="prediction (needs --target) | identity (--target: the person) | recommendation (needs --user, --item) | anomaly (no target; --target: a label for evaluation)."),
    user: Optional[str] = typer.Option(None, "--user", help="recommendation: the user ID column."),
    item: Optional[str] = typer.Option(None, "--item", help="recommendation: the item ID column."),
    rating: Optional[str] = typer.Option(None, "--rating", help="recommendation: an explicit rating column."),
    min_rating: Optional[float] = typer.Option(None, "--min-rating", help="recommendation: ratings ≥ this are positives."),
    time: Optional[str] = typer.Option(None, "--time", help="recommendation: a timestamp column (temporal split)."),
    split: Optional[str] = typer.Option(None, "--split", help="prediction: 'time' trains on the past, tests on the future (with --time-column)."),
    time_column: Optional[str] = typer.Option(None, "--time-column", help="prediction: the column of times (numbers or dates) for --split time."),
) -> None:
    """Write a config for DATA, with each column's type inferred from its values."""
    from lamina.errors import LaminaError

    if task == "recommendation":
        from lamina.recommend.commands import init_recommendation_config

        if not user or not item or target:
            raise LaminaError("--task recommendation needs --user COLUMN and --item COLUMN (and no --target)")
        path, notes = init_recommendation_config(data, user, item, output, rating=rating, min_rating=min_rating,
                                                 time=time, name=name, force=force)
        typer.echo(f"wrote {path}: recommendation, users '{user}' × items '{item}'")
        for note in notes:
            typer.echo(f"  {note}")
        typer.echo(f"next: lamina train {path}")
        return
    if task == "identity" and len(target) == 1:
        from lamina.identity.commands import init_identity_config

        path, column, notes = init_identity_config(data, target[0], output, force=force, name=name)
        typer.echo(f"wrote {path}: identity of '{column}', split by person")
        for note in notes:
            typer.echo(f"  {note}")
        typer.echo(f"next: lamina train {path}")
        return
    if task == "anomaly":
        from lamina.anomaly.init import init_anomaly_config

        if len(target) > 1 or any(v is not None for v in (user, item, rating, min_rating, time, split)):
            raise LaminaError("--task anomaly takes at most one --target (a label for evaluation only)")
        path, notes = init_anomaly_config(data, output, label=target[0] if target else None, force=force, name=name)
        typer.echo(f"wrote {path}: anomaly detection" + (f", label '{target[0]}' for evaluation" if target else ""))
        for note in notes:
            typer.echo(f"  {note}")
        typer.echo(f"next: lamina train {path}")
        return
    if task == "identity":
        raise LaminaError("--task identity needs one --target: the column (or a folder's subfolders) naming the person")
    if task != "prediction":
        raise LaminaError(f"--task {task!r}: allowed: prediction, identity, recommendation, anomaly")
    if not target:
        raise LaminaError("give the column to predict with --target COLUMN (or --task recommendation --user U --item I)")
    if any(v is not None for v in (user, item, rating, min_rating, time)):
        raise LaminaError("--user, --item, --rating, --min-rating and --time are for --task recommendation")
    if (split is None) != (time_column is None) or split not in (None, "time"):
        raise LaminaError("--split time goes with --time-column COLUMN (the other split methods: edit data.split)")
    from lamina.infer import init_config

    path, inferred = init_config(data, target, output, force=force, name=name, time_column=time_column)
    kinds = ", ".join(f"{c} ({k})" for c, k in inferred.outputs)
    typer.echo(f"wrote {path}: {len(inferred.inputs)} inputs → {kinds}")
    for note in inferred.notes:
        typer.echo(f"  {note}")
    typer.echo(f"next: lamina train {path}")
