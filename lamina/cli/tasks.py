"""Commands of data sources and tasks: ``flows``; recommendations; identity models and ``faces``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from lamina.cli.base import app, command


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
