"""PNG charts of explanations: ranked columns, the first row, permutation importance, image saliency."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lamina.explain.space import STEPS, Space, attribute
from lamina.predictor import Predictor


def global_attributions(explained: dict[str, Any]) -> dict[str, float]:
    """Mean absolute attribution per column over the explained rows."""
    rows = explained["explanations"]
    columns = list(rows[0]["attributions"]) if rows else []
    return {c: float(np.mean([abs(r["attributions"][c]) for r in rows])) for c in columns}


def charts(predictor: Predictor, frame: pd.DataFrame, explained: dict[str, Any],
           importance: dict[str, Any] | None = None) -> dict[str, bytes]:
    """PNG charts: the ranked columns (mean |IG|), the first row's attributions, permutation importance, and for
    image columns a saliency heat-map over the first images."""
    from lamina import plots

    found: dict[str, bytes] = {}
    mean = global_attributions(explained)
    if len(mean) < 2:  # one column (an image alone): its saliency map says more than one bar
        importance = None
    else:
        found["attributions.png"] = plots.bars(
            list(mean), list(mean.values()),
            f"Integrated Gradients: mean |attribution| over {len(explained['explanations'])} rows",
            f"mean |Δ {explained['score']}|")
        first = explained["explanations"][0]
        found["row0.png"] = plots.bars(list(first["attributions"]), list(first["attributions"].values()),
                                       f"row 0: predicted {first['prediction']} ({explained['score']} = "
                                       f"{first['score']:.3f}, baseline {first['baseline_score']:.3f})", "attribution")
    if importance:
        imp = importance["importance"]
        found["permutation.png"] = plots.bars(list(imp), list(imp.values()),
                                              f"permutation importance: drop in {importance['metric']}",
                                              f"{importance['metric']} drop", errors=list(importance["std"].values()))
    space = Space(predictor, explained["output"])
    images = [t for p in space.parts if p.mode == "pixels" for t in predictor.preprocessor.inputs if t.name == p.key]
    if images:
        t = images[0]
        shown = frame.iloc[:8]
        pixels = t.transform(shown[t.name]).numpy()
        inputs = predictor.preprocessor.inputs_to_tensors(shown)
        result = attribute(space, space.tensors(inputs), explained.get("steps", STEPS))
        titles = [f"{r['prediction']} ({r['score']:.2f})" for r in explained["explanations"][:8]]
        found["saliency.png"] = plots.saliency_grid(pixels, result.pixels[t.name], titles,
                                                    f"'{t.name}': Integrated Gradients saliency (red: for the prediction)")
    return found
