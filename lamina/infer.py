"""``lamina init``: look at a table and write a config a person can read and edit.

Each column gets a type from its values (number, category, binary; text for free text of several words; image
for paths of image files, audio for paths of .wav / .flac / .ogg files); columns that cannot help (constant, empty,
row numbers, unique IDs) are left out with a comment saying why.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import yaml

from lamina.config import Config, validate_config
from lamina.data.folders import is_audio_file, is_image_file
from lamina.errors import LaminaError, where

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
    if looks_like_text(present):
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
    for target in targets:
        result.outputs.append((target, infer_target(target, frame[target], source)))
    if not result.inputs:
        raise LaminaError(where(source, "no usable input columns besides the target(s)"))
    return result


def _yaml_name(column: str) -> str:
    """A column name as written in a YAML flow mapping: plain when it reads back the same, else quoted."""
    try:
        if yaml.safe_load(f"{{name: {column}}}") == {"name": column}:
            return column
    except yaml.YAMLError:
        pass
    return json.dumps(column, ensure_ascii=False)


# The text encoder `init` writes, chosen by benchmarks/text_defaults.py (docs/benchmarks.md): hashed word and character
# n-grams tie TF-IDF + logistic regression on reviews (0.806 vs 0.808) where the cnn lost (0.790), in half its time.
TEXT_ENCODER = "hashed"
TEXT_COMMENT = ("   # hashed word + char n-grams: the measured default; or bag | cnn | transformer | minilm "
                "(options: buckets, word_ngrams, char_ngrams, embedding_dim ...)")
TEXT_TRAINER = {"epochs: ": "epochs: 30   # text: hashed n-gram bags fit in a few epochs",
                "  patience: ": "  patience: 3   # text: they overfit soon after their best epoch"}


def _text_trainer_line(line: str, text_input: bool) -> str:
    """A trainer line as written for a table with a free-text input (the encoder's measured training defaults)."""
    if text_input:
        for start, replacement in TEXT_TRAINER.items():
            if line.startswith(start):
                return replacement
    return line


def _trainer_line(line: str, translation: bool) -> str:
    # A transformer decoder trained at full learning rate from the first step can collapse to generic output: with
    # a text target the config starts with one-cycle's warm-up (30 % of the steps) instead of plain cosine decay.
    if translation and line.startswith("schedule: "):
        return "schedule: onecycle   # warm-up first: transformer decoders need it"
    return line


def config_text(inferred: Inferred, data_path: str, name: str, rows: int) -> str:
    """The config as YAML with comments: one line per column, every section's knobs shown with their defaults."""
    defaults = Config.model_validate({
        "inputs": [{"name": "x", "type": "number"}], "outputs": [{"name": "y", "type": "number"}],
    }).model_dump(mode="json")
    first_class = next((t for _, t in inferred.outputs if t in ("binary", "category")), None)
    outputs = {c for c, _ in inferred.outputs}
    translation = any(t == "text" for _, t in inferred.outputs)
    text_input = not translation and any(k == "text" for _, k in inferred.inputs)

    def flow(section: dict) -> str:
        return yaml.safe_dump(section, sort_keys=False, default_flow_style=False).rstrip()

    def item(column: str, kind: str) -> str:
        line = f"  - {{name: {_yaml_name(column)}, type: {kind}}}"
        if kind == "image":  # many knobs: name them, so a reader knows what the options map may hold
            line += "   # options: size, channels, resize, augment, flip, encoder, widths, depths, on_bad_input ..."
        if kind == "text" and column in outputs:
            line += "   # options: vocab_size, max_length, dim, layers, heads, label_smoothing, beam_size ..."
        elif kind == "text" and translation:  # the decoder attends to token states: a transformer gives it context
            line = line[:-1] + ", options: {encoder: transformer}}"
        elif kind == "text":
            line = line[:-1] + f", options: {{encoder: {TEXT_ENCODER}}}}}" + TEXT_COMMENT
        if kind == "audio":
            line += "   # options: sample_rate, duration, n_mels, features (logmel | mfcc), augment, on_bad_input ..."
        if kind == "timeseries":
            line += "   # options: encoder (cnn | gru | transformer), max_length, normalization, missing, width, layers ..."
        return line

    lines = [
        f"# Lamina config written by `lamina init` from {data_path} ({rows} rows).",
        "# Edit freely: every key is documented in the README; `lamina train` checks it before training.",
        f"name: {name}",
        "data:",
        f"  path: {data_path}",
        "  split:",
        f"    method: {'stratified' if first_class else 'random'}",
        "    fractions: [0.7, 0.15, 0.15]   # train, validation, test",
        "    seed: 42",
        "inputs:",
        *[item(c, k) for c, k in inferred.inputs],
        *[f"  # {note}" for note in inferred.notes],
        "outputs:",
        *[item(c, k) for c, k in inferred.outputs],
        "hidden:",
        "\n".join("  " + line for line in flow(defaults["hidden"]).splitlines()),
        "trainer:",
        "\n".join("  " + _trainer_line(_text_trainer_line(line, text_input), translation)
                  for line in flow(defaults["trainer"]).splitlines()),
    ]
    return "\n".join(lines) + "\n"


def init_config(data: str | os.PathLike, targets: list[str], output: str | os.PathLike, force: bool = False,
                name: str | None = None) -> tuple[Path, Inferred]:
    from lamina.data.read import read_table

    data, output = Path(data), Path(output)
    if output.exists() and not force:
        raise LaminaError(f"{output} already exists; pass --force to overwrite it or -o to write elsewhere")
    frame = read_table(data)
    inferred = infer(frame, targets, str(data))
    relative = os.path.relpath(data.resolve(), output.resolve().parent)
    text = config_text(inferred, relative, name or data.stem, len(frame))
    validate_config(yaml.safe_load(text), source="generated config")  # what we write must be what we accept
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return output, inferred
