"""``lamina init DATA --task anomaly``: a config whose inputs are the columns the detector can read, with the
``anomaly`` section's knobs shown; ``--target`` names a label column used to evaluate the scores, never trained on."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from lamina.config import Config, validate_config
from lamina.errors import LaminaError, where
from lamina.infer import infer, yaml_name

READABLE = ("number", "binary", "category", "timeseries", "set")  # types whose classical features need no vocabulary


def init_anomaly_config(data: str | os.PathLike, output: str | os.PathLike, label: str | None = None,
                        force: bool = False, name: str | None = None) -> tuple[Path, list[str]]:
    from lamina.data.read import read_table

    data, output = Path(data), Path(output)
    if output.exists() and not force:
        raise LaminaError(f"{output} already exists; pass --force to overwrite it or -o to write elsewhere")
    frame = read_table(data)
    if label is not None and label not in frame.columns:
        raise LaminaError(where(str(data), f"label column {label!r} not found"))
    inferred = infer(frame.drop(columns=[label]) if label else frame, [], str(data))
    inputs = [(c, k) for c, k in inferred.inputs if k in READABLE]
    notes = inferred.notes + [f"left out {c!r}: type {k} (the anomaly task reads {', '.join(READABLE)})"
                              for c, k in inferred.inputs if k not in READABLE]
    if not inputs:
        raise LaminaError(where(str(data), "no column the anomaly task can read (numbers, categories, binary, series)"))
    section = Config.model_validate({"task": "anomaly", "inputs": [{"name": "x", "type": "number"}]})
    anomaly = section.anomaly.model_dump(mode="json")  # type: ignore[union-attr]
    anomaly["label"] = label
    lines = [
        f"# Lamina config written by `lamina init --task anomaly` from {data} ({len(frame)} rows).",
        "# No target: the network learns the rows (assumed mostly normal) and scores how unusual each one is.",
        f"name: {name or data.stem}",
        "task: anomaly",
        "data:",
        f"  path: {os.path.relpath(data.resolve(), output.resolve().parent)}",
        "  split: {method: random, fractions: [0.7, 0.15, 0.15], seed: 42}",
        "inputs:",
        *[f"  - {{name: {yaml_name(c)}, type: {k}}}" for c, k in inputs],
        *[f"  # {note}" for note in notes],
        "anomaly:   # method autoencoder | deep_svdd; threshold budget | quantile | pot",
        *[f"  {line}" for line in yaml.safe_dump(anomaly, sort_keys=False).splitlines()],
        "hidden: {depth: 2, width: 64}",
        "trainer: {epochs: 50, batch_size: 256, early_stopping: {patience: 5}}",
    ]
    text = "\n".join(lines) + "\n"
    validate_config(yaml.safe_load(text), source="generated config")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return output, notes
