"""What Lamina's own files must hold, checked before anything in them is used or allocated.

``lamina.json`` and ``checkpoint.json`` against pydantic schemas; a safetensors file's tensor names and shapes read
from its header alone (8 bytes of length, then JSON), so a file that declares or implies a huge tensor is refused
before a byte of it is allocated. Damage is one line naming the file and the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError
from safetensors import SafetensorError, safe_open

from lamina.errors import LaminaError

Model = TypeVar("Model", bound=BaseModel)


class Strict(BaseModel):
    """A JSON object of Lamina's: the keys it needs, of their types (no coercion); other keys pass."""

    model_config = ConfigDict(strict=True, extra="allow")


class PreprocessorState(Strict):
    inputs: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]


class TowersState(Strict):
    """A recommender's: one preprocessor per tower."""

    user: PreprocessorState
    item: PreprocessorState


def _layout(state: Any) -> str:
    return "<towers>" if isinstance(state, dict) and "user" in state and "inputs" not in state else "<columns>"


# A tag in angle brackets is the layout pydantic chose, not a key of the file: key_path leaves it out.
Preprocessors = Annotated[Union[Annotated[PreprocessorState, Tag("<columns>")], Annotated[TowersState, Tag("<towers>")]],
                          Discriminator(_layout)]


class ModelInfo(Strict):
    format: Literal["lamina-model"]
    format_version: int
    config: dict[str, Any]
    preprocessor: Preprocessors
    metrics: dict[str, Any] = Field(default_factory=dict)


class CheckpointState(Strict):
    epoch: int = Field(ge=0)
    history: list[dict[str, Any]]
    best_score: float
    best_epoch: int = Field(ge=0)
    bad_epochs: int = Field(ge=0)
    param_groups: list[dict[str, Any]]
    config: dict[str, Any]
    preprocessor: Preprocessors


def key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if not str(part).startswith("<")) or "(the whole file)"


def check(schema: type[Model], data: Any, path: Path, prefix: str = "", fix: str = "") -> Model:
    """``data`` validated by ``schema``; else one line naming ``path`` and the first bad key."""
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        raise LaminaError(f"{path}: {prefix}{key_path(first['loc'])}: {first['msg']}; "
                          f"{fix or 'retrain or restore the model directory'}") from None


def read_json(path: Path, fix: str) -> Any:
    """A JSON file of Lamina's, or one line saying it is damaged."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LaminaError(f"{path}: corrupted ({e}); {fix}") from None


def tensor_shapes(path: Path, fix: str) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor in a safetensors file, from its header only (nothing allocated)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except FileNotFoundError:
        raise LaminaError(f"{path}: missing; {fix}") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise LaminaError(f"{path}: not a safetensors file or corrupted ({e}); {fix}") from None


def check_shapes(path: Path, found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]],
                 fix: str) -> None:
    """Refuse a weights file whose tensors are not, by name and shape, the ones the model describes."""
    for key in sorted(set(expected) | set(found)):
        if key not in found:
            raise LaminaError(f"{path}: tensor {key!r} is missing; {fix}")
        if key not in expected:
            raise LaminaError(f"{path}: tensor {key!r} is not part of the model described beside it; {fix}")
        if found[key] != expected[key]:
            raise LaminaError(f"{path}: tensor {key!r} has shape {list(found[key])}, the model declares "
                              f"{list(expected[key])}; {fix}")
