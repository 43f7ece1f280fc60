"""A training run's time budget (``trainer.time_limit``): how it is written, and how far along the schedule it puts
the run.

The learning-rate schedule runs on ``progress``, the larger of the share of steps done and the share of the time
spent, so a cosine or one-cycle schedule reaches its end at the deadline even when the epochs would not fit; and
the loop stops there, keeping the best epoch's weights.

>>> parse_duration("10m"), parse_duration("90s"), parse_duration("1.5h"), parse_duration(45)
(600.0, 90.0, 5400.0, 45.0)
>>> progress(50, 100, elapsed=30.0, limit=60.0)  # half the steps and half the time
0.5
>>> progress(10, 100, elapsed=60.0, limit=60.0)  # out of time: the schedule is at its end
1.0
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

_UNITS = {**dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
          **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
          **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0)}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$")


def parse_duration(value: float | int | str) -> float:
    """Seconds from a number of seconds or a string such as "90s", "10m", "1.5h"; ValueError with what is allowed."""
    if isinstance(value, bool):
        raise ValueError("a duration is seconds (a number) or a string such as '90s', '10m', '1h'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).lower())
        if not match or match.group(2) not in ("", *_UNITS):
            raise ValueError("a duration is seconds (a number) or a string such as '90s', '10m', '1h'")
        seconds = float(match.group(1)) * _UNITS.get(match.group(2), 1.0)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("a duration must be more than 0 seconds, e.g. '90s', '10m', '1h'")
    return seconds


def format_duration(seconds: float) -> str:
    """``seconds`` as written in a config: "2h", "10m" or "45s", in the largest unit that divides it."""
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def progress(step: int, total: int, elapsed: float = 0.0, limit: float | None = None) -> float:
    """How far along the schedule a run is, from 0 to 1: the share of steps done, or of the time spent if larger."""
    done = step / max(total, 1)
    if limit:
        done = max(done, elapsed / limit)
    return min(done, 1.0)


class Budget:
    """The training time spent so far: ``spent`` seconds from earlier runs (a resumed checkpoint) plus this run's.

    This run's clock starts at the first call of ``elapsed``, so the first step of a fresh run sees exactly 0 and a
    run that is well inside its budget gets the same schedule as without one. ``clock`` is injectable for tests;
    ``agree`` turns each process's seconds into one value they all share (the maximum, in distributed training),
    so every process sets the same learning rate and stops at the same step.
    """

    def __init__(self, limit: float | None, spent: float = 0.0, clock: Callable[[], float] = time.monotonic,
                 agree: Callable[[float], float] | None = None) -> None:
        self.limit, self.spent, self.clock, self.agree = limit, spent, clock, agree
        self.started: float | None = None

    def elapsed(self) -> float:
        now = self.clock()
        if self.started is None:
            self.started = now
        seconds = self.spent + now - self.started
        # Without a limit the seconds steer nothing, so the processes need not agree on them (one collective less).
        return self.agree(seconds) if self.agree is not None and self.limit is not None else seconds

    def expired(self, elapsed: float) -> bool:
        return self.limit is not None and elapsed >= self.limit
