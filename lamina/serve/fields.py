"""What the server accepts in a number field, and how it answers a request it refuses: JSON-safe and small."""

# No ``from __future__ import annotations``: pydantic reads ``NUMBER`` at runtime.
import math
from typing import Any

from lamina.inputs.number import REQUEST_NUMBER


# A number field's type is the number input's own (null is missing; Infinity, NaN and magnitudes past LARGEST get 422).
NUMBER = REQUEST_NUMBER


def clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN and infinities to null."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's 422 detail, JSON-safe and small: an infinite input echoed as null, a long one cut."""
    cleaned = []
    for error in errors:
        entry = {k: v for k, v in dict(error).items() if k not in ("ctx", "url")}
        value = entry.get("input")
        if isinstance(value, str) and len(value) > 200:
            entry["input"] = f"{value[:200]}... ({len(value)} characters)"
        elif not isinstance(value, (str, int, float, bool, type(None))):
            entry.pop("input", None)  # a whole row or body: the loc already says where
        cleaned.append(clean(entry))
    return cleaned
