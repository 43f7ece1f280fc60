"""``lamina init``: look at a table and write a config a person can read and edit.

Each column gets a type from its values (number, category, binary; text for free text of several words; image
for paths of image files, audio for paths of .wav / .flac / .ogg files); columns that cannot help (constant, empty,
row numbers, unique IDs) are left out with a comment saying why.
"""

from __future__ import annotations

import json
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import yaml

from lamina.budget import format_duration
from lamina.config import AUTO_FOLD_ROWS, AUTO_FOLDS, Config, validate_config
from lamina.data.detection import looks_like_boxes
from lamina.data.folders import is_audio_file, is_image_file
from lamina.errors import LaminaError, where
from lamina.inputs import INPUT_TYPES
from lamina.sizing import Sizing, size_training

TRAIN_FRACTIONS = (0.7, 0.15, 0.15)  # the split init writes
MAX_CLASSES_FOR_NUMBERS = 20  # an integer target with at most this many values reads as classes (digits 0-9)


@dataclass
class Inferred:
    inputs: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _is_integral(values: pd.Series) -> bool:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return bool(len(numbers)) and bool(np.all(np.mod(numbers, 1) == 0))


def _numeric(values: pd.Series) -> bool:
    present = values.dropna()
    return len(present) > 0 and pd.to_numeric(present, errors="coerce").notna().all()


def infer_target(name: str, values: pd.Series, source: str | None) -> str:
    present = values.dropna()
    if present.empty:
        raise LaminaError(where(source, f"target column '{name}' has no values (all missing); pick another target"))
    distinct = present.nunique()
    if distinct < 2:
        raise LaminaError(where(source, (
            f"target column '{name}' has a single value ({present.iloc[0]!r}); there is nothing to predict"
        )))
    if looks_like_boxes(present):  # each image's objects (COCO or YOLO read by lamina.data.detection)
        return "boxes"
    if distinct == 2:
        return "binary"
    if _numeric(present):
        if _is_integral(present) and distinct <= MAX_CLASSES_FOR_NUMBERS:
            return "category"
        return "number"
    if looks_like_text(present):  # sentences, nearly all different: generated (translation), not classified
        return "text"
    return "category"


def looks_like_text(present: pd.Series) -> bool:
    """Free text: strings of several words on average, or mostly distinct strings with spaces (not IDs)."""
    if len(present) < 2 or not all(isinstance(v, str) for v in present.iloc[:1000]):
        return False
    sample = present.iloc[:5000].astype(str)
    if sample.nunique() < 10:  # a handful of values is a category, however long
        return False
    words = sample.str.split().str.len()
    spaced = sample.str.contains(r"\s", regex=True).mean()
    distinct = sample.nunique() / len(sample)
    return bool(words.mean() >= 4 and distinct > 0.2) or bool(distinct > 0.5 and spaced > 0.5)


def infer_input(name: str, values: pd.Series) -> tuple[str | None, str | None]:
    """The type of an input column, or None and the reason it is left out."""
    present = values.dropna()
    n = len(values)
    if present.empty:
        return None, "every value is missing"
    from lamina.inputs.text_hashing import looks_like_hostnames
    from lamina.inputs.timeseries import looks_like_series

    if looks_like_series(present):  # lists of numbers, or strings of many numbers: sensor readings (before nunique)
        return "timeseries", None
    distinct = present.nunique()
    if distinct == 1:
        return None, f"one value only ({present.iloc[0]!r})"
    if distinct == 2:
        return "binary", None
    if _numeric(present):
        numbers = pd.to_numeric(present)
        if distinct == n and _is_integral(present) and (np.diff(numbers.to_numpy()) == 1).all():
            return None, "row numbers (consecutive integers), not a feature"
        return "number", None
    if looks_like_text(present) or looks_like_hostnames(present):
        return "text", None
    if distinct == n and n >= 20:
        return None, "every value is different: an ID, not a feature"
    return "category", None


def holds_image_paths(values: pd.Series, base_dir: Path, is_file_kind: Callable[[str], bool] = is_image_file
                      ) -> bool:
    """Every value names an image file (or, with ``is_audio_file``, an audio file) by its extension, and the first
    few exist (relative to ``base_dir``)."""
    present = values.dropna()
    if present.empty or not all(isinstance(v, str) and is_file_kind(v) for v in present):
        return False
    return any((base_dir / os.path.expanduser(v)).is_file() for v in present.iloc[:20])


def infer(frame: pd.DataFrame, targets: list[str], source: str | None = None) -> Inferred:
    missing = [t for t in targets if t not in frame.columns]
    if missing:
        shown = ", ".join(repr(c) for c in list(frame.columns)[:10])
        raise LaminaError(where(source, f"target column {missing[0]!r} not found; columns are {shown}"))
    result = Inferred()
    # Image paths in a table are relative to its folder; a folder of images is its own base.
    base_dir = Path.cwd() if source is None else Path(source) if Path(source).is_dir() else Path(source).parent
    for column in frame.columns:
        if column in targets:
            continue
        if holds_image_paths(frame[column], base_dir):
            kind, why = "image", None
        elif holds_image_paths(frame[column], base_dir, is_audio_file):  # .wav .flac .ogg: the same test
            kind, why = "audio", None
        else:
            kind, why = infer_input(column, frame[column])
        if kind:
            result.inputs.append((column, kind))
        else:
            result.notes.append(f"left out {column!r}: {why}")
    for target in targets:  # a column of image files as the target: a mask per image (segmentation)
        kind = "mask" if holds_image_paths(frame[target], base_dir) else infer_target(target, frame[target], source)
        result.outputs.append((target, kind))
    if not result.inputs:
        raise LaminaError(where(source, "no usable input columns besides the target(s)"))
    return result


def yaml_name(column: str) -> str:
    """A column name as written in a YAML flow mapping: plain when it reads back the same, else quoted."""
    try:
        if yaml.safe_load(f"{{name: {column}}}") == {"name": column}:
            return column
    except yaml.YAMLError:
        pass
    return json.dumps(column, ensure_ascii=False)


# The text encoder `init` writes, chosen by benchmarks/text_defaults.py (docs/benchmarks.md): hashed word and character
# n-grams, TF-IDF-weighted, about tie TF-IDF + logistic regression on reviews (0.790 vs 0.808, like the cnn);
# on fortunes they trail it (0.520 vs 0.539), 5 points above the mean-pooled bag they replace.
TEXT_ENCODER = "hashed"
TEXT_DIM = 128  # written, not the type's default (64), so models saved with 64-d rows load as they were
TEXT_COMMENT = ("   # hashed word + char n-grams: the measured default; or bag | cnn | transformer | minilm "
                "(options: buckets, word_ngrams, char_ngrams, embedding_dim ...)")
TEXT_TRAINER = {"epochs: ": "epochs: 30   # text: hashed n-gram bags fit in a few epochs",
                "  patience: ": "  patience: 3   # text: they overfit soon after their best epoch"}


# Texts alone: the heads read the weighted n-gram bag straight (fastText's linear classifier); two hidden blocks on
# it overfit fortunes by the second epoch (0.42 accuracy against 0.52 without them, docs/benchmarks.md).
TEXT_HIDDEN = {"depth: ": "depth: 0   # text only: a linear read of the n-gram bag (fastText); deeper overfit"}


def _text_hidden_line(line: str, text_only: bool) -> str:
    """A hidden line as written for a table whose inputs are all free text."""
    return next((new for start, new in TEXT_HIDDEN.items() if line.startswith(start)), line) if text_only else line


def _text_trainer_line(line: str, text_input: bool) -> str:
    """A trainer line as written for a table with a free-text input (the encoder's measured training defaults)."""
    if text_input:
        for start, replacement in TEXT_TRAINER.items():
            if line.startswith(start):
                return replacement
    return line


def _trainer_line(line: str, translation: bool, rows: int, files: bool) -> str:
    # A transformer decoder trained at full learning rate from the first step can collapse to generic output: with
    # a text target the config starts with one-cycle's warm-up (30 % of the steps) instead of plain cosine decay.
    if translation and line.startswith("schedule: "):
        return "schedule: onecycle   # warm-up first: transformer decoders need it"
    if line.startswith("folds: "):
        return _folds_line(rows, translation, files)
    return line


SMALL_SERIES = 2000  # rows up to which a series table gets small batches and patient early stopping


def _series_trainer_line(line: str, rows: int) -> str:
    """A trainer line for a table with a series input: on a small one (``rows``) smaller batches, so an epoch
    takes several steps, and more patience, since a validation split of a few rows is a noisy stopping signal
    (benchmarks/series.py: ItalyPowerDemand, 67 training rows; PickupGestureWiimoteZ, 50)."""
    if rows > SMALL_SERIES:
        return line
    if line.startswith("batch_size: "):
        return f"batch_size: 16   # series, {rows} rows (at most {SMALL_SERIES}): several steps an epoch"
    if line.startswith("  patience: "):
        return f"  patience: 20   # series, {rows} rows: a validation split this small stops noisily"
    return line


def _sized(line: str, sizing: Sizing | None) -> str:
    """A trainer line with the sized epochs (after the note saying why) and time limit."""
    if sizing and line.startswith("epochs: "):
        written = int(line.split()[1])  # a type's own default (text: 30) stands when the budget allows more
        note = textwrap.wrap(sizing.note, 110)  # written either way: it says why the time limit is what it is
        return "\n  ".join([*(f"# {part}" for part in note), f"epochs: {min(written, sizing.epochs)}"])
    if sizing and line.startswith("time_limit: "):
        return f"time_limit: {format_duration(sizing.time_limit)}"
    return line


def _folds_line(rows: int, translation: bool, files: bool) -> str:
    """``trainer.folds`` with the reason in a comment: the row count decides (``lamina.folds``)."""
    if translation:
        return "folds: 1   # a text output trains one network (generation does not average)"
    if files:
        return (f"folds: auto   # {rows} rows: one network for inputs read from files (images, audio); "
                f"set N to cross-fit N of them")
    pooled = round(rows * (TRAIN_FRACTIONS[0] + TRAIN_FRACTIONS[1]))
    if pooled < AUTO_FOLD_ROWS:
        return (f"folds: auto   # {rows} rows ({pooled} train + validation, under {AUTO_FOLD_ROWS:,}): {AUTO_FOLDS} "
                f"networks on {AUTO_FOLDS} folds, averaged; thresholds tuned on their out-of-fold predictions")
    return (f"folds: auto   # {rows} rows: one network ({AUTO_FOLD_ROWS:,} train + validation rows or more); "
            f"under {AUTO_FOLD_ROWS:,}, {AUTO_FOLDS} cross-fitted networks")


def config_text(inferred: Inferred, data_path: str, name: str, rows: int, sizing: Sizing | None = None,
                time_column: str | None = None) -> str:
    """The config as YAML with comments: one line per column, every section's knobs shown with their defaults, and
    with ``sizing`` the epochs, time limit and image widths that fit the data; with ``time_column`` a time split."""
    defaults = Config.model_validate({
        "inputs": [{"name": "x", "type": "number"}], "outputs": [{"name": "y", "type": "number"}],
    }).model_dump(mode="json")
    first_class = next((t for _, t in inferred.outputs if t in ("binary", "category")), None)
    outputs = {c for c, _ in inferred.outputs}
    translation = any(t == "text" for _, t in inferred.outputs)
    series = any(t == "timeseries" for _, t in inferred.inputs)
    text_input = not translation and any(k == "text" for _, k in inferred.inputs)
    text_only = text_input and all(k == "text" for _, k in inferred.inputs)
    files = any(INPUT_TYPES[t].holds_paths for _, t in inferred.inputs)

    def flow(section: dict) -> str:
        return yaml.safe_dump(section, sort_keys=False, default_flow_style=False).rstrip()

    def item(column: str, kind: str) -> str:
        line = f"  - {{name: {yaml_name(column)}, type: {kind}}}"
        if kind == "image" and sizing and sizing.image_widths and column not in outputs:  # see the trainer's note
            line = line[:-1] + f", options: {{widths: {json.dumps(sizing.image_widths)}}}}}"
        if kind == "image":  # many knobs: name them, so a reader knows what the options map may hold
            line += "   # options: size, channels, resize, augment, flip, encoder, widths, depths, on_bad_input ..."
        if kind == "mask":
            line += "   # pixel values are class ids; options: size (the image's), resize, class_names ..."
        if kind == "text" and column in outputs:
            line += "   # options: vocab_size, max_length, dim, layers, heads, label_smoothing, beam_size ..."
        elif kind == "text" and translation:  # the decoder attends to token states: a transformer gives it context
            line = line[:-1] + ", options: {encoder: transformer}}"
        elif kind == "text":
            line = line[:-1] + f", options: {{encoder: {TEXT_ENCODER}, embedding_dim: {TEXT_DIM}}}}}" + TEXT_COMMENT
        if kind == "audio":
            line += "   # options: sample_rate, duration, n_mels, features (logmel | mfcc), augment, on_bad_input ..."
        if kind == "timeseries":  # the type's defaults were measured on small sets: say so, and what else there is
            line += ("   # encoder rocket (random-kernel features; measured best on small sets, benchmarks/series.py) "
                     "without augmentation by default; options: encoder (rocket | inception | cnn | gru | "
                     "transformer), augment, features, max_length, normalization, missing ...")
        return line

    lines = [
        f"# Lamina config written by `lamina init` from {data_path} ({rows} rows).",
        "# Edit freely: every key is documented in the README; `lamina train` checks it before training.",
        f"name: {name}",
        "data:",
        f"  path: {data_path}",
        "  split:",
        f"    method: {'time' if time_column else 'stratified' if first_class else 'random'}",
        *([f"    time_column: {yaml_name(time_column)}   # train on the earliest rows, test on the latest"]
          if time_column else []),
        f"    fractions: {list(TRAIN_FRACTIONS)}   # train, validation, test",
        "    seed: 42",
        "inputs:",
        *[item(c, k) for c, k in inferred.inputs],
        *[f"  # {note}" for note in inferred.notes],
        "outputs:",
        *[item(c, k) for c, k in inferred.outputs],
        "hidden:",
        "\n".join("  " + _text_hidden_line(line, text_only) for line in flow(defaults["hidden"]).splitlines()),
        "trainer:",
        "\n".join("  " + _sized(_trainer_line(_series_trainer_line(line, rows) if series
                                               else _text_trainer_line(line, text_input), translation, rows, files), sizing)
                  for line in flow(defaults["trainer"]).splitlines()),
    ]
    return "\n".join(lines) + "\n"


def init_config(data: str | os.PathLike, targets: list[str], output: str | os.PathLike, force: bool = False,
                name: str | None = None, time_column: str | None = None) -> tuple[Path, Inferred]:
    """Write the config for ``data``; with ``time_column``, split by time and leave that column out of the inputs
    (the test rows' times all lie past the training's)."""
    from lamina.data.read import read_table

    data, output = Path(data), Path(output)
    if output.exists() and not force:
        raise LaminaError(f"{output} already exists; pass --force to overwrite it or -o to write elsewhere")
    frame = read_table(data)
    if time_column is not None and time_column not in frame.columns:
        raise LaminaError(where(str(data), f"--time-column {time_column!r} not found; columns are "
                                f"{', '.join(repr(c) for c in list(frame.columns)[:10])}"))
    inferred = infer(frame.drop(columns=[time_column]) if time_column else frame, targets, str(data))
    if time_column:
        inferred.notes.append(f"left out {time_column!r}: the time split's column")
    relative = os.path.relpath(data.resolve(), output.resolve().parent)
    sizing = size_training(frame, inferred, data if data.is_dir() else data.parent)
    text = config_text(inferred, relative, name or data.stem, len(frame), sizing, time_column)
    validate_config(yaml.safe_load(text), source="generated config")  # what we write must be what we accept
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return output, inferred
