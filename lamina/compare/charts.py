"""The comparison as a table (printed, and stored in ``compare.json`` for the report), a chart and the files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lamina import plots

CHART = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "pr_auc", "r2")  # scores in [0, 1]: one axis


def chart(result: dict[str, Any]) -> bytes:
    rows = result["rows"]
    metrics = [m for m in CHART if all(m in r["metrics"] for r in rows)]
    series = {f"{r['model']}" + (f" ({r['output']})" if len({x['output'] for x in rows}) > 1 else ""):
              [r["metrics"][m] for m in metrics] for r in rows}
    return plots.grouped_bars(metrics, series, "deep vs classical, test split", "score")


def table_rows(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = ["model", "output", "test rows", "metric", "value", "accuracy (r2)", "train s", "predict s"]
    rows = [[r["model"], r["output"], r["metrics"]["rows"], r["metric"], r["metric_value"],
             r["metrics"].get("accuracy", r["metrics"].get("r2", "")), r["train_seconds"], r["predict_seconds"]]
            for r in result["rows"]]
    return header, rows


def print_comparison(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    header, rows = table_rows(result)
    table = Table(*header, title="deep vs classical (same split, test rows)", title_justify="left")
    for r in rows:
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r])
    console = Console(width=max(Console().width, 110))
    console.print(table)
    for line in result["verdicts"].values():
        console.print(line)


def write_comparison(result: dict[str, Any], folder: Path) -> dict[str, Path]:
    """``compare.json`` (rows, verdicts and the table as printed, which the report shows) and ``compare.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "compare.json", "chart": folder / "compare.png"}
    header, rows = table_rows(result)
    stored = {**result, "table": {"header": header, "rows": rows}}
    paths["json"].write_text(json.dumps(stored, indent=1, default=float), encoding="utf-8")
    plots.save(chart(result), paths["chart"])
    return paths
