"""The fitted preprocessor: every input and output type of a config, fitted on the training split.

One object, one code path from raw frame to tensors at training, evaluation and serving time; its state is plain
JSON stored in ``lamina.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from lamina.config import ColumnsConfig, Config
from lamina.errors import LaminaError, where
from lamina.inputs import INPUT_TYPES
from lamina.inputs.base import InputType
from lamina.model import DENSE, Network
from lamina.outputs import OUTPUT_TYPES
from lamina.outputs.base import OutputType

log = logging.getLogger("lamina")


class Preprocessor:
    def __init__(self, config: Config | ColumnsConfig, state: dict[str, Any] | None = None, cache_dir: Path | None = None) -> None:
        self.config = config
        state = state or {}
        self.inputs: list[InputType] = [
            INPUT_TYPES[s.type](s.name, INPUT_TYPES[s.type].Options(**s.options), state.get("inputs", {}).get(s.name))
            for s in config.inputs
        ]
        self.outputs: list[OutputType] = [
            OUTPUT_TYPES[s.type](s.name, OUTPUT_TYPES[s.type].Options(**s.options), state.get("outputs", {}).get(s.name))
            for s in config.outputs
        ]
        self.set_cache_dir(cache_dir)

    def set_cache_dir(self, cache_dir: Path | None) -> None:
        """Where types may keep derived files (decoded images) between transforms; None: keep nothing."""
        for t in self.inputs:
            t.cache_dir = cache_dir

    def state(self) -> dict[str, Any]:
        return {"inputs": {t.name: t.state for t in self.inputs}, "outputs": {t.name: t.state for t in self.outputs}}

    def fit(self, train: pd.DataFrame, source: str | None = None) -> Preprocessor:
        self.check_columns(train, source, targets=True)
        for t in [*self.inputs, *self.outputs]:
            try:
                if t in self.outputs:
                    t.bind(self.inputs)
                t.fit(train[t.name])
            except LaminaError as e:
                raise LaminaError(where(source, str(e))) from None
        return self

    def network(self) -> Network:
        return Network(self.inputs, self.outputs, self.config.hidden)

    def check_columns(self, frame: pd.DataFrame, source: str | None, targets: bool) -> None:
        wanted = [t.name for t in self.inputs] + ([t.name for t in self.outputs] if targets else [])
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            what = "target column" if all(c in {t.name for t in self.outputs} for c in missing) else "column"
            names = ", ".join(repr(c) for c in missing[:5])
            raise LaminaError(where(source, (
                f"{what}{'s' if len(missing) > 1 else ''} {names} not found; the file has "
                f"{', '.join(repr(c) for c in list(frame.columns)[:8])}{'...' if len(frame.columns) > 8 else ''}; "
                "fix the file or the config"
            )))

    def drop_missing_targets(self, frame: pd.DataFrame, source: str | None) -> pd.DataFrame:
        """Rows whose target is missing cannot teach or score anything: drop them, and say how many."""
        present = frame[[t.name for t in self.outputs]].notna().all(axis=1)
        if not present.all():
            if not present.any():
                raise LaminaError(where(source, "every row has a missing target value; check the target column"))
            log.warning("%s%d row(s) with a missing target left out", f"{source}: " if source else "", int((~present).sum()))
        return frame[present]

    def drop_unseen_classes(self, frame: pd.DataFrame, source: str | None) -> pd.DataFrame:
        """Validation or test rows of a class the training split never had cannot enter the loss: leave them out."""
        keep = pd.Series(True, index=frame.index)
        for t in self.outputs:
            known = t.known(frame[t.name])
            if not known.all():
                log.warning("%s%d row(s) whose '%s' class never occurs in the training split left out (e.g. %r)",
                            f"{source}: " if source else "", int((~known).sum()), t.name, frame[t.name][~known].iloc[0])
            keep &= known
        return frame[keep]

    def drop_bad_inputs(self, frame: pd.DataFrame, source: str | None) -> pd.DataFrame:
        """Rows an input type cannot use (an unreadable image with on_bad_input: skip) are left out; the type warns."""
        keep = None
        try:
            for t in self.inputs:
                if t.name in frame.columns and (usable := t.usable(frame[t.name])) is not None:
                    keep = usable if keep is None else keep & usable
        except LaminaError as e:
            raise LaminaError(where(source, str(e))) from None
        if keep is None:
            return frame
        if not keep.any():
            raise LaminaError(where(source, "no row has a usable input left; check the files the warnings name"))
        return frame[keep]

    def inputs_to_tensors(self, frame: pd.DataFrame, source: str | None = None) -> dict[str, torch.Tensor]:
        self.check_columns(frame, source, targets=False)
        batch: dict[str, torch.Tensor] = {}
        dense: list[torch.Tensor] = []
        try:
            for t in self.inputs:
                x = t.transform(frame[t.name])
                if t.passthrough:
                    dense.append(x)
                else:
                    batch[t.name] = x
        except LaminaError as e:
            raise LaminaError(where(source, str(e))) from None
        if dense:
            batch[DENSE] = torch.cat(dense, dim=1) if len(dense) > 1 else dense[0]
        return batch

    def targets_to_tensors(self, frame: pd.DataFrame, source: str | None = None) -> dict[str, torch.Tensor]:
        try:
            return {t.name: t.transform(frame[t.name]) for t in self.outputs}
        except LaminaError as e:
            raise LaminaError(where(source, str(e))) from None
