"""A Parquet training file read a few row groups at a time (``data.streaming: true``), for data larger than memory.

Memory is bounded by ``data.shuffle_row_groups`` row groups (read, turned into tensors and shuffled together) plus
the ``data.fit_rows`` sample the preprocessing is fitted on, not by the file's size. Every epoch the row groups are
dealt out afresh, in an order drawn from the training loop's seeded shuffle generator (so resume repeats it); under
DDP each rank reads its own share of them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from lamina.errors import LaminaError, where


# One step's batch: inputs, targets, this rank's rows, and the global batch's rows (for the DDP loss weighting).
Batch = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int, int]
# A frame of raw rows to (inputs, targets) tensors, as the in-memory splits are made (cleaning included).
ToTensors = Callable[[pd.DataFrame], tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]


@dataclass(frozen=True)
class Ranks:
    """The processes reading one stream: how many, which one this is, and a sum over all of them (the trainer
    passes its process group's; one process by default). Given by the caller, so data knows nothing of DDP."""

    world: int = 1
    rank: int = 0
    all_sum: Callable[[torch.Tensor], torch.Tensor] = lambda value: value


class ParquetStream:
    def __init__(self, path: str, columns: list[str], shuffle_row_groups: int,
                 prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> None:
        """``columns`` are the ones read (the config's inputs and outputs); ``prepare`` runs on every frame read
        (resolving image paths against the file's folder)."""
        self.path, self.shuffle_row_groups, self.prepare = path, shuffle_row_groups, prepare
        if not Path(path).is_file():
            raise LaminaError(where(path, "no such file; data.streaming reads data.train as a Parquet file"))
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as error:
            raise LaminaError(where(path, f"data.streaming needs a Parquet file, and this is not one "
                                          f"({' '.join(str(error).split())[:200]})")) from None
        present = set(self.file.schema_arrow.names)
        missing = [c for c in columns if c not in present]
        if missing:
            raise LaminaError(where(path, f"column(s) {', '.join(map(repr, missing[:5]))} not found; the file has "
                                          f"{', '.join(map(repr, list(present)[:8]))}; fix the file or the config"))
        self.columns = columns
        meta = self.file.metadata
        self.group_rows = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self.num_rows = sum(self.group_rows)
        if self.num_rows == 0:
            raise LaminaError(where(path, "has no rows; write a Parquet file with data"))

    def fingerprint(self) -> dict[str, object]:
        """What every DDP rank must agree on without reading the data: its shape and schema."""
        return {"rows": self.group_rows, "schema": str(self.file.schema_arrow)}

    def read(self, groups: list[int]) -> pd.DataFrame:
        frame = self.file.read_row_groups(groups, columns=self.columns).to_pandas()
        return self.prepare(frame) if self.prepare else frame

    def sample(self, rows: int) -> pd.DataFrame:
        """At most ``rows`` rows spread evenly over every row group, the same on every call and every rank; the
        whole file when it has no more rows than that."""
        share = min(1.0, rows / self.num_rows)
        parts = []
        for group, n in enumerate(self.group_rows):
            take = math.ceil(n * share)
            if take:
                table = self.file.read_row_group(group, columns=self.columns)
                index = np.unique(np.linspace(0, n - 1, take).round().astype(np.int64))
                parts.append(table.take(pa.array(index)) if take < n else table)
        frame = pa.concat_tables(parts).to_pandas().iloc[:rows].reset_index(drop=True)
        return self.prepare(frame) if self.prepare else frame

    def batches(self, to_tensors: ToTensors, batch_size: int, shuffle: torch.Generator,
                ranks: Ranks = Ranks()) -> Iterator[Batch]:
        """One epoch of batches for this rank: its share of the row groups, ``shuffle_row_groups`` at a time, rows
        shuffled within each window; a short remainder is carried into the next window.

        Under DDP each rank's batch is its slice of a global batch of ``batch_size`` rows, and the epoch ends for
        every rank as soon as one runs out (so all take the same number of steps; the leftover rows are other rows
        next epoch, as the row groups are dealt out afresh)."""
        world, here = ranks.world, ranks.rank
        # Two draws from the shared generator, the same on every rank (so they deal the same order next epoch too);
        # the rows are shuffled by a generator of this rank's own, as ranks read different windows.
        order = torch.randperm(len(self.group_rows), generator=shuffle).tolist()
        rows_seed = int(torch.randint(2**62, (1,), generator=shuffle))
        mine = order[here::world]
        local = batch_size * (here + 1) // world - batch_size * here // world
        windows = (mine[i:i + self.shuffle_row_groups] for i in range(0, len(mine), self.shuffle_row_groups))
        source = _windows(self, windows, to_tensors, torch.Generator().manual_seed(rows_seed + here))
        for inputs, targets in source:
            n = len(next(iter(targets.values())))
            start = 0
            # Full batches only while more windows follow; the file's last rows make a batch of their own.
            while n - start >= local or (source.last and n - start > 0):
                # A lone last row would be a batch of one, which batch norm cannot take: it joins this batch.
                end = n if source.last and n - start == local + 1 else min(start + local, n)
                if world > 1:
                    rows, total = _agree(end - start, ranks)
                    if rows < 0:
                        return
                else:
                    rows = total = end - start
                yield ({k: v[start:end] for k, v in inputs.items()}, {k: v[start:end] for k, v in targets.items()},
                       rows, total)
                start = end
            source.carry = _tail(inputs, targets, start) if start < n else None
        if world > 1:
            _agree(0, ranks)  # this rank is out of rows: tell the others, who may still be waiting for a step


class _windows:
    """The windows of an epoch as tensors, shuffled; ``carry`` (rows left from the previous window) is put first."""

    def __init__(self, stream: ParquetStream, windows: Iterator[list[int]], to_tensors: ToTensors,
                 shuffle: torch.Generator) -> None:
        self.stream, self.windows, self.to_tensors, self.shuffle = stream, windows, to_tensors, shuffle
        self.carry: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None = None
        self.pending = next(self.windows, None)
        self.last = False

    def __iter__(self) -> _windows:
        return self

    def __next__(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        while self.pending is not None:
            groups, self.pending = self.pending, next(self.windows, None)
            self.last = self.pending is None
            inputs, targets = self.to_tensors(self.stream.read(groups))
            if not targets:  # every row of the window was dropped (missing targets, unusable inputs)
                if self.carry is not None and self.last:
                    inputs, targets = self.carry
                    self.carry = None
                    return inputs, targets
                continue
            order = torch.randperm(len(next(iter(targets.values()))), generator=self.shuffle)
            inputs = {k: v[order] for k, v in inputs.items()}
            targets = {k: v[order] for k, v in targets.items()}
            if self.carry is not None:
                inputs = {k: torch.cat([self.carry[0][k], v]) for k, v in inputs.items()}
                targets = {k: torch.cat([self.carry[1][k], v]) for k, v in targets.items()}
                self.carry = None
            return inputs, targets
        if self.carry is not None:  # reachable when the last windows were all dropped
            self.last = True
            inputs, targets = self.carry
            self.carry = None
            return inputs, targets
        raise StopIteration


def _tail(inputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], start: int) -> tuple:
    # Cloned: a view would keep the whole window's tensors alive.
    return ({k: v[start:].clone() for k, v in inputs.items()}, {k: v[start:].clone() for k, v in targets.items()})


def _agree(rows: int, ranks: Ranks) -> tuple[int, int]:
    """Every rank says how many rows its next batch has (0: none left): (this rank's rows, the global batch's rows),
    or (-1, 0) when some rank has none, which ends the epoch everywhere."""
    have = torch.tensor([1 if rows else 0, rows], dtype=torch.int64)
    have = ranks.all_sum(have)
    if int(have[0]) < ranks.world:
        return -1, 0
    return rows, int(have[1])


class RepeatFilter(logging.Filter):
    """Streamed windows are cleaned one by one, so a warning (unseen categories, dropped rows) would repeat for every
    window of every epoch: let each message's first occurrence through, and count the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        key = (str(record.msg), str(args[:1]) if isinstance(record.msg, str) and "%" in record.msg else "")
        if key in self.seen:
            self.dropped += 1
            return False
        self.seen.add(key)
        return True
