"""The ``lamina`` command. Heavy modules are imported inside each command so ``lamina --help`` starts fast.

The commands live in the modules beside this one, grouped by what they act on; importing them registers them on
``app`` (``lamina.cli.base``).
"""

from __future__ import annotations

from lamina.cli import init, models, faces, tasks  # noqa: F401, I001 - registers the commands, in --help order
from lamina.cli.base import app, command

__all__ = ["app", "command", "main"]


def main() -> None:
    app()
