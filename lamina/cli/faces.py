"""The faces of a trained model: ``serve``, ``export``, ``compare``, ``explain``, ``layers``, ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lamina.cli.base import app, command


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
