"""Quieting expected warnings is context-local: a block under ``lamina.logs.quiet()`` drops its own warnings while
another thread's (a concurrent ``serve`` request's) still reach the log, and the shared logger's level never moves."""

from __future__ import annotations

import logging
import threading

from lamina.logs import quiet


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_quiet_is_local_to_its_thread() -> None:
    logger = logging.getLogger("lamina")
    handler = Collect()
    logger.addHandler(handler)
    level = logger.level
    inside, other_done = threading.Event(), threading.Event()

    def other() -> None:
        inside.wait(5)
        logger.warning("other thread")  # while the first thread is inside quiet()
        other_done.set()

    thread = threading.Thread(target=other)
    thread.start()
    try:
        with quiet():
            assert logger.level == level
            inside.set()
            assert other_done.wait(5)
            logger.warning("quieted")
            logger.error("an error still shows")
        logger.warning("after")
    finally:
        thread.join(5)
        logger.removeHandler(handler)
    assert handler.messages == ["other thread", "an error still shows", "after"]
