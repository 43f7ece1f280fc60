"""Writing a frame in the format its file name says (CSV, TSV, Parquet, JSONL), atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from lamina.errors import LaminaError


def write_table(frame: pd.DataFrame, path: Path) -> None:
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
