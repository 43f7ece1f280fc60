"""Metrics as people read them: a table per output (rows: metrics, columns: splits or files) and confusion matrices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SHOWN_FIRST = ("rows", "accuracy", "balanced_accuracy", "macro_f1", "f1", "precision", "recall", "roc_auc", "pr_auc",
               "log_loss", "threshold", "rmse", "mae", "r2")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def metrics_tables(metrics: dict[str, dict[str, dict[str, Any]]]) -> list[Table]:
    """``metrics[split][output][metric]`` → one table per output, one column per split."""
    splits = list(metrics)
    outputs = list(dict.fromkeys(o for split in metrics.values() for o in split))
    tables = []
    for output in outputs:
        names = list(dict.fromkeys(
            k for split in splits for k in metrics[split].get(output, {}) if k != "confusion_matrix"
        ))
        names.sort(key=lambda k: SHOWN_FIRST.index(k) if k in SHOWN_FIRST else len(SHOWN_FIRST))
        table = Table(title=f"{output}", title_justify="left")
        table.add_column("metric")
        for split in splits:
            table.add_column(split, justify="right")
        for name in names:
            table.add_row(name, *[_fmt(metrics[split].get(output, {}).get(name, "")) for split in splits])
        tables.append(table)
        last = metrics[splits[-1]].get(output, {}).get("confusion_matrix")
        if last:
            tables.append(confusion_table(last, f"{output} confusion matrix, {splits[-1]}\n(rows: true, columns: predicted)"))
    return tables


def confusion_table(confusion: dict[str, Any], title: str) -> Table:
    table = Table(title=title, title_justify="left", min_width=40)
    table.add_column("")
    for label in confusion["labels"]:
        table.add_column(str(label), justify="right")
    for label, row in zip(confusion["labels"], confusion["matrix"]):
        table.add_row(str(label), *[str(v) for v in row])
    return table


def print_metrics(metrics: dict[str, dict[str, dict[str, Any]]]) -> None:
    console = Console(width=max(Console().width, 100))
    for table in metrics_tables(metrics):
        console.print(table)


def _primary_metrics(info: dict[str, Any]) -> dict[str, str]:
    """Output name → the metric its type is judged by (outputs of types not installed here are left out)."""
    from lamina.outputs import OUTPUT_TYPES

    specs = info.get("config", {}).get("outputs", [])
    return {s["name"]: OUTPUT_TYPES[s["type"]].primary_metric for s in specs if s.get("type") in OUTPUT_TYPES}


def list_runs(folder: Path) -> list[dict[str, Any]]:
    """Model directories under ``folder`` with their test (else validation) primary metrics."""
    found = []
    for info_path in sorted(folder.glob("*/lamina.json")):
        if info_path.parent.name.startswith("."):  # a model being published, or one an interrupted publish left aside
            continue
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        metrics = info.get("metrics", {})
        split = "test" if "test" in metrics else "validation" if "validation" in metrics else "train"
        primary = _primary_metrics(info)
        summary = {
            f"{output}.{name}": value
            for output, values in metrics.get(split, {}).items()
            for name, value in values.items()
            if name in ("accuracy", "roc_auc", "pr_auc", "rmse", "r2") or name == primary.get(output)
        }
        found.append({"run": info_path.parent.name, "created": info.get("created", ""), "split": split, **summary})
    return found


def print_runs(folder: Path) -> None:
    runs = list_runs(folder)
    if not runs:
        print(f"no model directories in {folder}")
        return
    columns = list(dict.fromkeys(k for run in runs for k in run))
    table = Table(*columns)
    # A run name is what the user types next: never cut it, even on a narrow terminal.
    table.columns[0].no_wrap, table.columns[0].min_width = True, max(len(run["run"]) for run in runs)
    for run in runs:
        table.add_row(*[_fmt(run.get(c, "")) for c in columns])
    console = Console()
    # Off a terminal (a pipe, a file) there is no width to fit: print every name and number whole.
    (console if console.is_terminal else Console(width=10_000)).print(table)
