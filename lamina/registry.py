"""A registry of column types: the built-in ones, and those other packages register through an entry-point group
(``lamina.inputs`` / ``lamina.outputs``), looked up when asked for -- so a package installed (or put on the path)
after Lamina was imported is seen, and nothing is cached at module level.

An entry point's name is the type's ``kind`` (what a config's ``type:`` says) and its object the class, e.g. in a
package's ``pyproject.toml``::

    [project.entry-points."lamina.inputs"]
    log_number = "my_package.types:LogNumberInput"

It follows the built-in types' contract (``lamina.inputs.base.InputType`` / ``lamina.outputs.base.OutputType``). A
plugin that does not load, is not such a class, or reuses a built-in kind is left out with a warning naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

log = logging.getLogger("lamina")


class TypeRegistry(Mapping[str, Any]):
    """kind → type class: ``builtin`` first, then the entry points of ``group`` that subclass ``base``."""

    def __init__(self, group: str, base: type, builtin: list[type]) -> None:
        self.group, self.base = group, base
        self.builtin: dict[str, type] = {t.kind: t for t in builtin}

    def plugins(self) -> dict[str, type]:
        found: dict[str, type] = {}
        for point in sorted(entry_points(group=self.group), key=lambda p: p.name):
            if point.name in self.builtin or point.name in found:
                log.warning("entry point %r (%s) reuses a type name already registered; left out", point.name,
                            self.group)
                continue
            try:
                cls = point.load()
            except Exception as e:  # a broken plugin must not take the built-in types down with it
                log.warning("entry point %r (%s) did not load: %s: %s; left out", point.name, self.group,
                            type(e).__name__, e)
                continue
            if not (isinstance(cls, type) and issubclass(cls, self.base)) or getattr(cls, "kind", None) != point.name:
                log.warning("entry point %r (%s): %r is not a %s subclass with kind %r; left out", point.name,
                            self.group, cls, self.base.__name__, point.name)
                continue
            found[point.name] = cls
        return found

    def __getitem__(self, kind: str) -> type:
        if kind in self.builtin:
            return self.builtin[kind]
        return self.plugins()[kind]

    def __contains__(self, kind: object) -> bool:
        return kind in self.builtin or (isinstance(kind, str) and kind in self.plugins())

    def __iter__(self) -> Iterator[str]:
        return iter({**self.builtin, **self.plugins()})

    def __len__(self) -> int:
        return len({**self.builtin, **self.plugins()})
