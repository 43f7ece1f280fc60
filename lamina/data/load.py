"""From the config's ``data`` section (or a DataFrame) to train / validation / test frames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lamina.config import Config
from lamina.data.paths import path_columns, resolve_paths
from lamina.data.read import read_table
from lamina.data.split import files_split, split_frame
from lamina.data.stream import ParquetStream
from lamina.errors import LaminaError
from lamina.inputs import INPUT_TYPES
from lamina.outputs import OUTPUT_TYPES



def resolve(path: str, base_dir: Path) -> Path:
    """Relative data paths in a config are relative to the config file, so a project folder can move."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


def _read(source: str, config: Config) -> pd.DataFrame:
    """A data file, its image paths resolved against the file's folder (a folder of images is its own base)."""
    frame = read_table(source, config.data.format)
    base = Path(source) if Path(source).is_dir() else Path(source).parent
    return resolve_paths(frame, _path_columns(config), base)


def _path_columns(config: Config) -> list[str]:
    """Columns of file paths: image inputs, and targets that are files too (masks)."""
    return path_columns([*((s.name, INPUT_TYPES[s.type]) for s in config.inputs),
                         *((s.name, OUTPUT_TYPES[s.type]) for s in config.outputs)])


def open_stream(config: Config, base_dir: Path) -> ParquetStream:
    """The training file of a ``data.streaming`` config, opened for reading a few row groups at a time."""
    assert config.data.train
    source = str(resolve(config.data.train, base_dir))
    if config.data.format not in ("auto", "parquet") or (config.data.format == "auto" and
                                                        Path(source).suffix.lower() not in (".parquet", ".pq")):
        raise LaminaError(f"{source}: data.streaming reads Parquet files (.parquet, .pq); convert the training file")
    columns = [s.name for s in config.inputs] + [s.name for s in config.outputs]
    paths = _path_columns(config)
    prepare = (lambda f: resolve_paths(f, paths, Path(source).parent)) if paths else None
    return ParquetStream(source, columns, config.data.shuffle_row_groups, prepare)


def load_splits(config: Config, base_dir: Path, frame: pd.DataFrame | None = None,
                ) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The frames of each split and the source each came from (for messages naming the file).

    With ``data.streaming`` the train frame is the ``data.fit_rows`` sample of the training file (what the
    preprocessing is fitted and the train metrics are scored on); validation and test files are read whole."""
    data = config.data
    if data.streaming and frame is not None:
        raise LaminaError("data.streaming reads the config's Parquet files; train on a DataFrame without it")
    if frame is None and data.train:
        paths = {name: getattr(data, name) for name in ("train", "validation", "test") if getattr(data, name)}
        sources = {name: str(resolve(p, base_dir)) for name, p in paths.items()}
        frames = {name: _read(sources[name], config) for name in paths
                  if not (data.streaming and name == "train")}
        if data.streaming:
            frames = {"train": open_stream(config, base_dir).sample(data.fit_rows), **frames}
        return files_split(frames), sources
    if frame is not None:
        source = "data"
        frame = read_table(frame)
    else:
        if not data.path:
            raise LaminaError("data.path is not set in the config; point it at a CSV, TSV, Parquet or JSONL file")
        source = str(resolve(data.path, base_dir))
        frame = _read(source, config)
    split = data.split
    method = split.method
    class_target = next((o.name for o in config.outputs if OUTPUT_TYPES[o.type].task == "classification"), None)
    group_target = next((o.name for o in config.outputs if OUTPUT_TYPES[o.type].split_by_value), None)
    if method == "auto":
        method = "group" if group_target else "stratified" if class_target else "random"
    frames = split_frame(
        frame, method, split.fractions, split.seed,
        column=split.time_column if method == "time" else split.column or group_target if method == "group"
        else split.column,
        stratify_on=class_target if method == "stratified" else None, source=source,
    )
    return frames, {name: source for name in frames}
