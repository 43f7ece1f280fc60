"""Per-row explanations: ``explain_rows(predictor, frame)`` is the contract ``lamina serve``'s ``POST /explain`` uses."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lamina.errors import LaminaError
from lamina.explain.space import MAX_JSON_PIXELS, STEPS, Space, attribute
from lamina.predictor import Predictor


def _prepare(predictor: Predictor, frame: pd.DataFrame, labelled: bool = False) -> tuple[pd.DataFrame, dict]:
    prep = predictor.preprocessor
    if labelled:
        prep.check_columns(frame, None, targets=True)
        frame = prep.drop_missing_targets(frame, None)
    frame = prep.drop_bad_inputs(frame, None)
    if len(frame) == 0:
        raise LaminaError("no rows to explain")
    return frame, prep.inputs_to_tensors(frame)


def explain_rows(predictor: Predictor, frame: pd.DataFrame, output: str | None = None, steps: int = STEPS
                 ) -> dict[str, Any]:
    """Integrated Gradients for each row: ``{"explanations": [{"attributions": {column: score}, ...}], ...}``.

    JSON-able. Each row also has its prediction, the explained score, the baseline's score and the completeness
    error; image columns add a ``saliency`` map (H × W, summed over channels) when it is at most 64 × 64."""
    frame, inputs = _prepare(predictor, frame)
    space = Space(predictor, output)
    result = attribute(space, space.tensors(inputs), steps)
    decoded = space.output.decode(result.raw)
    texts = {t.name: t.tokens(inputs[t.name]) for t in predictor.preprocessor.inputs if t.name in result.tokens}
    rows = []
    for i in range(len(frame)):
        row: dict[str, Any] = {
            "row": i,
            "prediction": _plain(decoded.iloc[i, 0]),
            "score": round(float(result.score[i]), 6),
            "baseline_score": round(float(result.baseline_score[i]), 6),
            "completeness_error": round(float(result.delta[i]), 6),
            "attributions": {c: round(float(v), 6) for c, v in zip(result.columns, result.values[i])},
        }
        small = {k: v[i] for k, v in result.pixels.items() if v[i].size <= MAX_JSON_PIXELS}
        if small:
            row["saliency"] = {k: np.round(v, 6).tolist() for k, v in small.items()}
        if result.tokens:  # text columns: each token and its attribution (they sum to the column's)
            row["tokens"] = {k: {"tokens": texts[k][i], "attributions": np.round(v[i], 6).tolist()}
                             for k, v in result.tokens.items()}
        if result.target is not None:
            row["explained_class"] = space.output.explained_label(int(result.target[i]))
        rows.append(row)
    return {"method": "integrated_gradients", "steps": steps, "output": space.output.name,
            "score": result.score_name, "baseline": baseline_note(predictor), "explanations": rows}


def baseline_note(predictor: Predictor) -> str:
    """What "says nothing" means for this model's inputs, in each type's own words."""
    return "per type: " + ", ".join(dict.fromkeys(t.baseline_note for t in predictor.preprocessor.inputs))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
