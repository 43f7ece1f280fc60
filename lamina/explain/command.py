"""``lamina explain``: attributions of a file's rows → ``explanations.json``, PNG charts and ``explain.html``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lamina.explain.charts import charts, global_attributions
from lamina.explain.importance import faithfulness, permutation_importance
from lamina.explain.pages import faithfulness_html, print_explanations, tokens_html
from lamina.explain.rows import explain_rows
from lamina.pages import html_page


def explain(model_dir: str | Path, data: str | Path | pd.DataFrame, out_dir: str | Path | None = None,
            output: str | None = None, max_rows: int = 1000, verbose: bool = True) -> dict[str, Path]:
    """``lamina explain``: attributions of the rows in ``data`` (a file, folder or frame) → JSON, PNGs and an HTML
    page in ``out_dir`` (default ``<model_dir>/explain``). With labels, also permutation importance and the
    deletion check. Returns the written paths."""
    from lamina import plots
    from lamina.store import load

    predictor = load(model_dir)
    frame, _ = predictor._frame(data, None if isinstance(data, pd.DataFrame) else str(data))
    if len(frame) > max_rows:
        frame = frame.sample(max_rows, random_state=0)
    out = Path(out_dir) if out_dir else Path(model_dir) / "explain"
    out.mkdir(parents=True, exist_ok=True)
    explained = explain_rows(predictor, frame, output)
    labelled = all(t.name in frame.columns for t in predictor.preprocessor.outputs)
    importance = permutation_importance(predictor, frame, output) if labelled else None
    check = faithfulness(predictor, frame, output=output) if labelled else None
    numbers = {"global": global_attributions(explained), "permutation": importance, "faithfulness": check,
               **explained}
    paths = {"json": out / "explanations.json"}
    paths["json"].write_text(json.dumps(numbers, indent=1, default=float), encoding="utf-8")
    images = charts(predictor, frame, explained, importance)
    for name, data_ in images.items():
        paths[name.removesuffix(".png")] = plots.save(data_, out / name)
    sections = [(name.removesuffix(".png").replace("row0", "first row"),
                 f'<img alt="{name}" src="{plots.data_uri(d)}">') for name, d in images.items()]
    if any("tokens" in r for r in explained["explanations"]):
        sections.append(("Tokens", tokens_html(explained)))
    if check:
        sections.append(("Faithfulness", faithfulness_html(check)))
    paths["html"] = out / "explain.html"
    paths["html"].write_text(html_page(f"Explanations: {Path(model_dir).name}", sections), encoding="utf-8")
    if verbose:
        print_explanations(numbers)
    return paths
