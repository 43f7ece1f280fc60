"""A progress bar for training: epoch, loss, validation metric and ETA, drawn with rich on a terminal.

Off a terminal (CI logs, pipes) it prints one plain line per epoch instead of redrawing a bar.
"""

from __future__ import annotations

import sys
from typing import Any


class EpochProgress:
    def __init__(self, epochs: int, first_epoch: int = 0, enabled: bool = True) -> None:
        self.enabled = enabled
        self.live = enabled and sys.stderr.isatty()
        self.bar = None
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("epoch"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[status]}"),
                TextColumn("ETA"), TimeRemainingColumn(), transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("train", total=epochs, completed=first_epoch, status="")

    def update(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        status = "  ".join(f"{k} {v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds", "lr"))
        if self.bar is not None:
            self.bar.update(self.task, completed=record["epoch"], status=status)
        else:
            print(f"epoch {record['epoch']}  {status}  ({record['seconds']:.2f}s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
