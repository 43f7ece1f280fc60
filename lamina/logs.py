"""Lamina's log records: small, counted, and quieted per context.

- ``Tidy``: user values cut to a few hundred characters, a repeated warning counted, not repeated. A server that warns
  about a 1 MB unseen category on every request would otherwise write megabytes a second.
- ``quiet()``: a context-local threshold (``contextvars``: per thread and per asyncio task) that a filter on the
  ``lamina`` logger reads. A logger's level is process-wide: lowering and restoring it around one call would also
  silence (or un-silence) every other thread's records while ``serve`` answers concurrent requests.
"""

from __future__ import annotations

import contextlib
import logging
import numbers
from contextvars import ContextVar
from typing import Iterator

VALUE_CHARS = 200  # of any one value in a log line
LINE_CHARS = 1000  # of a whole message
KEYS_KEPT = 10_000  # distinct warnings counted before the counts start again


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class Tidy(logging.Filter):
    """A handler filter: shortens long arguments and messages; lets a warning through the 1st, 10th, 100th, ...
    time it repeats (same template, same non-numeric arguments), saying how many times it has been seen."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[tuple[object, ...], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if args:
            record.args = tuple(cut(a, VALUE_CHARS) if isinstance(a, (str, bytes)) and len(a) > VALUE_CHARS
                                else a for a in args)
        message = record.getMessage()
        if len(message) > LINE_CHARS:  # a long value formatted in by %s of a list, or a message built beforehand
            record.msg, record.args = cut(message, LINE_CHARS), None
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg),
               *(cut(str(a), 50) for a in args if not isinstance(a, numbers.Number)))
        if len(self.seen) >= KEYS_KEPT and key not in self.seen:
            self.seen.clear()
        count = self.seen[key] = self.seen.get(key, 0) + 1
        if count == 1:
            return True
        if str(count).strip("0") != "1":  # 10, 100, 1000, ...: a reminder with the count
            return False
        record.msg, record.args = f"{cut(message, LINE_CHARS)} (the same warning {count} times so far)", None
        return True


def tidy(handler: logging.Handler) -> logging.Handler:
    """``handler`` with a ``Tidy`` filter (once)."""
    if not any(isinstance(f, Tidy) for f in handler.filters):
        handler.addFilter(Tidy())
    return handler


_threshold: ContextVar[int] = ContextVar("lamina_log_threshold", default=logging.NOTSET)


class ContextThreshold(logging.Filter):
    """Drops records below the threshold ``quiet()`` set in the current context."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= _threshold.get()


def _install(logger: logging.Logger) -> None:
    if not any(isinstance(f, ContextThreshold) for f in logger.filters):
        logger.addFilter(ContextThreshold())


@contextlib.contextmanager
def quiet(level: int = logging.ERROR) -> Iterator[None]:
    """Inside the block, this context's ``lamina`` records below ``level`` are dropped (other threads unaffected)."""
    _install(logging.getLogger("lamina"))
    token = _threshold.set(level)
    try:
        yield
    finally:
        _threshold.reset(token)
