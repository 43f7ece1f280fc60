"""A supervised run's data as tensors: the cleaned splits, the rows each is scored on, the digests every DDP
process must share, and an epoch of in-memory batches."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from lamina import distributed
from lamina.config import Config
from lamina.data.stream import ParquetStream
from lamina.model import teacher_key, without_teacher
from lamina.preprocessor import Preprocessor
from lamina.training.task import Batch

TRAIN_GENERATE = 2000  # training rows scored by generation when an output is text


@dataclass
class Split:
    frame: pd.DataFrame
    inputs: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return len(self.frame)


def make_split(prep: Preprocessor, frame: pd.DataFrame, source: str | None, name: str) -> Split:
    if len(frame):
        frame = prep.drop_missing_targets(frame, source)
        frame = prep.drop_bad_inputs(frame, f"{source} ({name} split)" if source else name)
    if len(frame) and name != "train":
        frame = prep.drop_unseen_classes(frame, f"{source} ({name} split)" if source else name)
    if len(frame) == 0:
        return Split(frame, {}, {})
    inputs, targets = prep.inputs_to_tensors(frame, source), prep.targets_to_tensors(frame, source)
    # Sequence heads read their target in training and for the validation loss (teacher forcing).
    inputs.update({teacher_key(t.name): targets[t.name] for t in prep.outputs if t.sequence})
    return Split(frame, inputs, targets)


def scored_rows(prep: Preprocessor, name: str, split: Split, seed: int) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """The rows a split is scored on, without teacher-forcing inputs. A training split with a text output is scored
    on a seeded sample of ``TRAIN_GENERATE`` rows: beam search over every training row would cost more than the
    training did; the metrics' ``rows`` says how many were scored."""
    inputs = without_teacher(split.inputs)
    if name != "train" or len(split) <= TRAIN_GENERATE or not any(t.sequence for t in prep.outputs):
        return split.frame, inputs
    index = np.sort(np.random.default_rng(seed).choice(len(split), TRAIN_GENERATE, replace=False))
    return split.frame.iloc[index], {k: v[torch.from_numpy(index)] for k, v in inputs.items()}


def fingerprints(config: Config, splits: dict[str, pd.DataFrame], stream: ParquetStream | None = None
                 ) -> dict[str, str]:
    """Digests of what every process of a distributed run must share: the config and each split's rows (and the
    streamed training file's row groups and schema)."""
    def rows(frame: pd.DataFrame) -> str:
        try:
            hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
        except TypeError:  # unhashable cells (lists): compare their text
            hashed = pd.util.hash_pandas_object(frame.astype(str), index=True).to_numpy()
        return f"{len(frame)}:{distributed.digest(list(frame.columns))}:{hashlib.sha256(hashed.tobytes()).hexdigest()}"

    data: dict[str, Any] = {name: rows(frame) for name, frame in splits.items()}
    if stream is not None:
        data["streamed train"] = stream.fingerprint()
    return {"config": distributed.digest(config.model_dump(mode="json")), "data": distributed.digest(data)}


def batch_bounds(n: int, batch_size: int) -> list[int]:
    """Where each batch of an epoch starts, and ``n``. A batch of one row breaks batch norm and says little: a lone
    last row joins the previous batch."""
    bounds = list(range(0, n, batch_size)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        bounds.pop(-2)
    return bounds


def memory_batches(inputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], order: torch.Tensor,
                   bounds: list[int], parallel: bool) -> Iterator[Batch]:
    """One epoch of in-memory batches: slices of the tensors that the permutation ``order`` picks."""
    for start, end in zip(bounds, bounds[1:]):
        index = order[start:end]
        rows = len(index)
        if parallel:  # this rank's slice of the global batch
            index, rows = distributed.shard(index)
        yield ({k: v[index] for k, v in inputs.items()}, {k: v[index] for k, v in targets.items()}), rows, end - start


def on_device(batches: Iterator[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int, int]],
              device: torch.device) -> Iterator[Batch]:
    for inputs, targets, rows, total in batches:
        yield ({k: v.to(device, non_blocking=True) for k, v in inputs.items()},
               {k: v.to(device, non_blocking=True) for k, v in targets.items()}), rows, total
