"""The search space: the default ``tune.space`` of a config, its check, and a trial's config.

A key names a config value: ``hidden.width``, ``trainer.learning_rate``, or a column's option,
``inputs[color].options.embedding_dim``. The network and trainer keys are the same for every config; each input
and output type adds its own through ``tune_space`` (``lamina.inputs.base.ColumnType``), so nothing here knows a
type.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import optuna

from lamina.config import Config, TuneParam, validate_config
from lamina.errors import LaminaError
from lamina.inputs import INPUT_TYPES
from lamina.outputs import OUTPUT_TYPES

# Wide enough to hold what works for small tables and for images; a user narrows them in the written section.
NETWORK_SPACE: dict[str, dict[str, Any]] = {
    "hidden.width": {"low": 16, "high": 512, "log": True, "integer": True},
    "hidden.depth": {"low": 1, "high": 4, "integer": True},
    "hidden.dropout": {"low": 0.0, "high": 0.5},
    "trainer.learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
    "trainer.weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
    "trainer.batch_size": {"choices": [32, 64, 128, 256]},
}
_COLUMN_KEY = re.compile(r"^(inputs|outputs)\[(.+)\]\.options\.(\w+)$")
_REGISTRIES = {"inputs": INPUT_TYPES, "outputs": OUTPUT_TYPES}


def default_space(config: Config) -> dict[str, dict[str, Any]]:
    """The network's and trainer's keys, then each column type's own."""
    space = dict(NETWORK_SPACE)
    for side, registry in _REGISTRIES.items():
        for spec in getattr(config, side):
            for option, entry in registry[spec.type].tune_space().items():
                space[f"{side}[{spec.name}].options.{option}"] = entry
    return space


def _column(raw: dict[str, Any], side: str, name: str) -> dict[str, Any] | None:
    return next((s for s in raw.get(side) or [] if s.get("name") == name), None)


def set_value(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` in a config dict (as ``Config.model_dump`` gives); KeyError when the config has no such key."""
    match = _COLUMN_KEY.match(key)
    if match:
        side, name, option = match.groups()
        spec = _column(raw, side, name)
        if spec is None or option not in _REGISTRIES[side][spec["type"]].Options.model_fields:
            raise KeyError(key)
        spec.setdefault("options", {})[option] = value
        return
    *parents, last = key.split(".")
    node = raw
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or last not in node or isinstance(node[last], (dict, list)):
        raise KeyError(key)
    node[last] = value


def get_value(raw: dict[str, Any], key: str) -> Any:
    """The config's current value at ``key`` (None when a column option is unset)."""
    match = _COLUMN_KEY.match(key)
    if match:
        side, name, option = match.groups()
        spec = _column(raw, side, name) or {}
        return (spec.get("options") or {}).get(option)
    node: Any = raw
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _values(param: TuneParam) -> list[Any]:
    """The values a check tries: both ends of a range, every choice, the fixed value."""
    if param.fixed is not None:
        return [param.fixed]
    if param.choices is not None:
        return list(param.choices)
    ends = [param.low, param.high]
    return [int(v) for v in ends] if param.integer else ends  # type: ignore[arg-type]


def trial_base(config: Config) -> dict[str, Any]:
    """The config a trial starts from: the user's, without its tune section."""
    raw = config.model_dump(mode="json")
    raw["tune"] = None
    return raw


def check_space(config: Config, source: str) -> dict[str, TuneParam]:
    """``config.tune.space``, each key checked to name a config value and each end, choice or fixed value checked
    against that value's own rules: a ``LaminaError`` naming ``tune.space.<key>`` otherwise."""
    assert config.tune is not None
    space, base = config.tune.space, trial_base(config)
    if not any(p.fixed is None for p in space.values()):
        raise LaminaError(f"{source}: tune.space: nothing to search; give at least one range or choices")
    for key, param in space.items():
        where = f"{source}: tune.space.{key}"
        if param.choices is not None and not all(v is None or isinstance(v, (bool, int, float, str))
                                                 for v in param.choices):
            raise LaminaError(f"{where}: choices are numbers, strings or true/false (got {param.choices})")
        if param.integer and param.low is not None and (param.low != int(param.low) or param.high != int(param.high)):
            raise LaminaError(f"{where}: an integer range needs whole ends (got {param.low}, {param.high})")
        for value in _values(param):
            raw = copy.deepcopy(base)
            try:
                set_value(raw, key, value)
            except KeyError:
                raise LaminaError(f"{where}: no such key in the config; keys look like hidden.width, "
                                  "trainer.learning_rate or inputs[NAME].options.OPTION") from None
            try:
                validate_config(raw)
            except LaminaError as e:
                raise LaminaError(f"{where}: {value!r} is not allowed ({str(e).removeprefix('config: ')})") from None
    return space


def suggest(trial: optuna.Trial, space: dict[str, TuneParam]) -> dict[str, Any]:
    """The trial's value of every key: asked of Optuna for ranges and choices, as written for fixed ones."""
    values: dict[str, Any] = {}
    for key, param in space.items():
        if param.fixed is not None:
            values[key] = param.fixed
        elif param.choices is not None:
            values[key] = trial.suggest_categorical(key, param.choices)
        elif param.integer:
            values[key] = trial.suggest_int(key, int(param.low), int(param.high), log=param.log)  # type: ignore[arg-type]
        else:
            values[key] = trial.suggest_float(key, param.low, param.high, log=param.log)  # type: ignore[arg-type]
    return values


def with_values(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(base)
    for key, value in values.items():
        set_value(raw, key, value)
    return raw


def current_values(config: Config, space: dict[str, TuneParam]) -> dict[str, Any] | None:
    """The config's own values of the searched keys, for the first trial (so the study never ends worse than the
    config it started from); None when one lies outside its range or choices."""
    raw, values = config.model_dump(mode="json"), {}
    for key, param in space.items():
        if param.fixed is not None:
            continue
        value = get_value(raw, key)
        if param.choices is not None:
            if value not in param.choices:
                return None
        elif value is None or not param.low <= value <= param.high:  # type: ignore[operator]
            return None
        values[key] = value
    return values
