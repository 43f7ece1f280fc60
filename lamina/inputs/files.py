"""What input types whose values are file paths (images, audio) share: the paths, the decoding processes, and the
``on_bad_input`` policy — the first bad file is an error naming column, row and file, or with ``skip`` the rows
whose file does not decode are left out with one warning naming them."""

from __future__ import annotations

import logging
import os
from typing import ClassVar

import numpy as np
import pandas as pd

from lamina.errors import LaminaError, row_name
from lamina.inputs.base import InputType

log = logging.getLogger("lamina")


class FileInput(InputType):
    """Subclasses give ``noun`` (for messages) and ``failed`` (row → reason for each file that does not decode);
    their options have ``workers`` and ``on_bad_input``."""

    holds_paths = True
    noun: ClassVar[str] = "file"

    def _paths(self, values: pd.Series) -> list[str]:
        return ["" if pd.isna(v) else os.fspath(v) for v in values]

    def _workers(self) -> int:
        return self.options.workers if self.options.workers is not None else min(8, os.cpu_count() or 1)

    def failed(self, values: pd.Series) -> dict[int, str]:
        raise NotImplementedError

    def _raise_first(self, values: pd.Series, failed: dict[int, str]) -> None:
        row = min(failed)
        path = values.iloc[row]
        raise LaminaError(
            f"column '{self.name}' row {row_name(values.index[row])}: {'' if pd.isna(path) else f'{path}: '}"
            f"{failed[row]}; fix or remove the file, or set on_bad_input: skip in the column's options"
        )

    def usable(self, values: pd.Series) -> np.ndarray | None:
        """Rows whose file decodes; with on_bad_input 'skip' the others are named in a warning."""
        if self.options.on_bad_input == "error":
            return None  # transform raises on the first bad file
        failed = self.failed(values)
        if not failed:
            return None
        keep = np.ones(len(values), dtype=bool)
        keep[list(failed)] = False
        shown = "; ".join(f"row {row_name(values.index[r])} {values.iloc[r]} ({failed[r]})"
                          for r in sorted(failed)[:10])
        log.warning("column '%s': %d unreadable %s(s) left out (on_bad_input: skip): %s%s", self.name, len(failed),
                    self.noun, shown, "; ..." if len(failed) > 10 else "")
        return keep
