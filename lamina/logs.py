"""Quieting Lamina's expected warnings for one block of work, without touching the shared logger's level.

A logger's level is process-wide: lowering and restoring it around one call would also silence (or un-silence) every
other thread's records while ``serve`` answers concurrent requests. ``quiet()`` sets a context-local threshold
instead (``contextvars``: per thread and per asyncio task), which a filter on the ``lamina`` logger reads.
"""

from __future__ import annotations

import contextlib
import logging
from contextvars import ContextVar
from typing import Iterator

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
