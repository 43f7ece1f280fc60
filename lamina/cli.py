"""The ``lamina`` command. Heavy modules are imported inside each command so ``lamina --help`` starts fast."""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

app = typer.Typer(
    help="Lamina: from raw data to a trained, evaluated deep network.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)


def _setup_logging() -> None:
    from lamina.logs import tidy

    logger = logging.getLogger("lamina")
    if not logger.handlers:
        handler = tidy(logging.StreamHandler(sys.stderr))
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
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # here, so a closed pipe is met while its error can still be handled
            return result
        except BrokenPipeError:
            # The reader went away (`lamina predict ... | head -1`): end quietly, as Unix tools do, with the status
            # a SIGPIPE gives; stdout goes to /dev/null so the interpreter's last flush cannot fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(128 + 13) from None
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


@app.command()
@command
def serve(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="A model directory written by `lamina train`."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only)."),
    port: int = typer.Option(8000, "--port", "-p", help="Port to listen on."),
    runtime: str = typer.Option("torch", "--runtime", help="torch (PyTorch) or onnx (ONNX Runtime; run `lamina export` first)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads per prediction (default: the runtime's)."),
) -> None:
    """Serve a model over HTTP: REST API (/predict, /model, /health, /docs) and a web page at /."""
    from lamina.serve import serve as run_server

    run_server(model_dir, host=host, port=port, runtime=runtime, threads=threads)


@app.command()
@command
def export(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="A model directory written by `lamina train`."),
    format: str = typer.Option("onnx", "--format", "-f", help="Export format: onnx."),
    data: Optional[Path] = typer.Option(None, "--data", help="Rows to check the export against PyTorch with "
                                        "(default: rows drawn from the model's fitted inputs; needed for images)."),
) -> None:
    """Export a model's network to MODEL_DIR/model.onnx, checked against PyTorch (max difference <= 1e-4)."""
    from lamina.errors import LaminaError
    from lamina.export import export_onnx

    if format != "onnx":
        raise LaminaError(f"--format {format!r}: the only export format is onnx")
    path = export_onnx(model_dir, data)
    typer.echo(f"wrote {path}")


@app.command()
@command
def compare(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="A config file."),
    output_dir: Path = typer.Option(Path("runs"), "--output-dir", help="Folder of model directories."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where compare.json/png go (default: the model directory)."),
) -> None:
    """Train the deep model and its classical counterpart on the same split; print a table, write a plot."""
    from lamina.compare import compare as run_compare

    paths = run_compare(config, output_dir=output_dir, out_dir=out)
    typer.echo(f"chart: {paths['chart']}  report: {paths.get('report', '')}")


@app.command()
@command
def explain(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="A model directory written by `lamina train`."),
    data: Path = typer.Argument(..., help="Rows to explain (with labels, also permutation importance and a deletion check)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Default: MODEL_DIR/explain."),
) -> None:
    """Why the model said what it said, for these rows (Integrated Gradients, in columns or pixels)."""
    from lamina.explain import explain as run_explain

    typer.echo(f"wrote {run_explain(model_dir, data, out)['html']}")


@app.command()
@command
def layers(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="A model directory written by `lamina train`."),
    data: Path = typer.Argument(..., help="A labelled file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Default: MODEL_DIR/layers."),
) -> None:
    """A linear probe per hidden layer (and encoder output), with a PCA plot coloured by class."""
    from lamina.probes import layers as run_layers

    typer.echo(f"wrote {run_layers(model_dir, data, out)['pca']}")


@app.command()
@command
def report(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="A model directory written by `lamina train`."),
    data: Optional[Path] = typer.Option(None, "--data", help="A labelled file for the explanation and probe sections."),
) -> None:
    """(Re)write MODEL_DIR/report.html: one self-contained page about the run."""
    from lamina.report import write_report

    typer.echo(f"wrote {write_report(model_dir, data=data)}")


@app.command()
@command
def flows(
    ctx: typer.Context,
    capture: Path = typer.Argument(..., help="A pcap or pcapng file."),
    output: Path = typer.Option(..., "--output", "-o", help="The flow table: Parquet (keeps the sizes series), CSV, TSV or JSONL."),
    idle_timeout: float = typer.Option(120.0, "--idle-timeout", min=0.0, help="Seconds of silence that end a flow."),
    sizes: int = typer.Option(32, "--sizes", min=1, help="Packets of each flow in its sizes series."),
) -> None:
    """Group CAPTURE's packets into bidirectional flows and write one row per flow."""
    from lamina.data.flows import write_flows
    from lamina.data.read import check_file

    check_file(str(capture), capture)
    typer.echo(write_flows(capture, output, idle_timeout=idle_timeout, sizes=sizes))


# --- recommendations (lamina.recommend) ----------------------------------------------------------------------------


@app.command()
@command
def recommend(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="A recommendation model directory (`task: recommendation`)."),
    user: Optional[str] = typer.Option(None, "--user", "-u", help="One user ID."),
    users: Optional[Path] = typer.Option(None, "--users", help="A file with a column of user IDs (and user features)."),
    k: int = typer.Option(10, "-k", "--top", min=1, help="How many items per user."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write CSV, TSV, Parquet or JSONL instead of a table."),
) -> None:
    """Top-k items each user has not interacted with, with scores. Unknown users get popular items, with a note."""
    from lamina.recommend.commands import recommend as run_recommend

    run_recommend(model_dir, user=user, users_file=users, k=k, output=output)


@app.command()
@command
def similar(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="A recommendation model directory (`task: recommendation`)."),
    item: str = typer.Option(..., "--item", "-i", help="An item ID of the model's catalogue."),
    k: int = typer.Option(10, "-k", "--top", min=1, help="How many items."),
) -> None:
    """The items nearest to ITEM in the learned item space."""
    from lamina.recommend.commands import similar as run_similar

    run_similar(model_dir, item, k)


# --- identity models (lamina.identity) ----------------------------------------------------------------------------


@app.command()
@command
def enroll(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="A model directory with an identity output."),
    people: Path = typer.Argument(..., help="A folder of people: PEOPLE/<name>/<files>."),
    output: Path = typer.Option(Path("gallery.json"), "--output", "-o", help="The gallery file (JSON) to write."),
) -> None:
    """Enrol each person of PEOPLE/ into a gallery: one template per person, with the model's hash."""
    from lamina.identity.commands import enroll as run_enroll

    typer.echo(run_enroll(model_dir, people, output))


@app.command()
@command
def identify(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="The model directory the gallery was enrolled with."),
    gallery: Path = typer.Argument(..., help="A gallery written by `lamina enroll`."),
    query: Path = typer.Argument(..., help="A file, or a folder of files, to identify."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Cosine below which a query is unknown (default: the model's calibrated one)."),
) -> None:
    """Per query file: the enrolled person, or "unknown", with the score (CSV)."""
    from lamina.identity.commands import identify as run_identify

    run_identify(model_dir, gallery, query, threshold).to_csv(sys.stdout, index=False)


@app.command()
@command
def verify(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="A model directory with an identity output."),
    a: Path = typer.Argument(..., help="One file."),
    b: Path = typer.Argument(..., help="The other file."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Cosine at which they are the same person (default: the model's calibrated one)."),
) -> None:
    """Are A and B the same person? The score, and the decision at the calibrated threshold."""
    from lamina.identity.commands import verify as run_verify

    typer.echo(run_verify(model_dir, a, b, threshold))


@app.command()
@command
def faces(
    ctx: typer.Context,
    photos: Path = typer.Argument(..., help="A photo, or a folder of photos (searched recursively)."),
    output: Path = typer.Option(Path("crops"), "--output", "-o", help="The folder for the crops and faces.json."),
    size: int = typer.Option(112, "--size", help="Side of each aligned crop, in pixels."),
    min_face: int = typer.Option(20, "--min-face", help="Smallest face sought, in pixels."),
) -> None:
    """Find every face in each photo (MTCNN), align it by its five landmarks, save the crops and faces.json."""
    from lamina.identity.photos import find_faces

    typer.echo(find_faces(photos, output, size, min_face))


def main() -> None:
    app()
