"""Writing a frame in the format its file name says (CSV, TSV, Parquet, JSONL), atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from lamina.errors import LaminaError


FORMATS = (".csv", ".tsv", ".parquet", ".jsonl")


def check_output_file(path: Path, formats: tuple[str, ...] = FORMATS) -> None:
    """Refuse, before any work, an output file that cannot be written: a folder, a file as its folder, a format
    with no writer."""
    if path.suffix.lower() not in formats:
        raise LaminaError(f"{path}: unknown output format {path.suffix.lower()!r}; use {', '.join(formats)}")
    if path.is_dir():
        raise LaminaError(f"{path}: is a directory; give a file name for the output")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise LaminaError(f"{path}: {parent} is a file, not a folder; choose another output path")
    if parent is not None and not os.access(parent, os.W_OK):
        raise LaminaError(f"{path}: cannot write in {parent} (permission denied); choose another output path")


def write_table(frame: pd.DataFrame, path: Path) -> None:
    check_output_file(path)
    suffix = path.suffix.lower()
    writers = {
        ".csv": lambda p: frame.to_csv(p, index=False),
        ".tsv": lambda p: frame.to_csv(p, index=False, sep="\t"),
        ".parquet": lambda p: frame.to_parquet(p, index=False),
        ".jsonl": lambda p: frame.to_json(p, orient="records", lines=True, force_ascii=False),
    }
    if suffix not in writers:
        raise LaminaError(f"{path}: unknown output format {suffix!r}; use .csv, .tsv, .parquet or .jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    writers[suffix](tmp)
    os.replace(tmp, path)
