"""Lamina: from raw data to a trained, evaluated, explained and served deep network.

>>> import lamina
>>> model = lamina.train("config.yaml")            # doctest: +SKIP
>>> lamina.load("runs/config").predict(frame)      # doctest: +SKIP

Heavy modules (torch, pandas) load on first use, so ``import lamina`` and ``lamina --help`` stay fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["train", "load", "save", "LaminaClassifier", "LaminaRegressor", "LaminaError"]

_LAZY = {
    "train": ("lamina.api", "train"),
    "load": ("lamina.store", "load"),
    "save": ("lamina.store", "save"),
    "LaminaClassifier": ("lamina.sklearn", "LaminaClassifier"),
    "LaminaRegressor": ("lamina.sklearn", "LaminaRegressor"),
    "LaminaError": ("lamina.errors", "LaminaError"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'lamina' has no attribute {name!r}")
