"""What the CLI calls for recommendations: ``init --task recommendation``, ``recommend`` and ``similar``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from rich.console import Console
from rich.table import Table

from lamina.errors import LaminaError, where

METRICS_SHOWN = ("recall@{k}", "ndcg@{k}", "hit_rate@{k}", "mrr", "coverage", "train_seconds", "recs_per_second", "users")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4f}"
    return str(value)


def metrics_table(metrics: dict[str, dict[str, Any]], title: str = "test: full ranking") -> Table:
    """``metrics[model][metric]`` → one table: a row per model (the network first, then the baselines)."""
    first = next(iter(metrics.values()))
    k = next((key.split("@")[1] for key in first if key.startswith("recall@")), "10")
    names = [n.format(k=k) for n in METRICS_SHOWN if n.format(k=k) in first]
    table = Table(title=title, title_justify="left")
    table.add_column("model")
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    for model, values in metrics.items():
        table.add_row(model, *[_fmt(values.get(n, "")) for n in names])
    return table


def print_recommendation_metrics(metrics: dict[str, dict[str, Any]], protocol: str | None = None) -> None:
    console = Console(width=max(Console().width, 110))
    console.print(metrics_table(metrics))
    if protocol:
        console.print(f"protocol: {protocol}", highlight=False)


def _per_group_constant(frame: pd.DataFrame, key: str, column: str) -> bool:
    groups = frame[[key, column]].dropna().groupby(key)[column].nunique()
    return bool(len(groups)) and int(groups.max()) <= 1 and frame[column].nunique() > 1


def init_recommendation_config(data: str | os.PathLike, user: str, item: str, output: str | os.PathLike = "config.yaml",
                               rating: str | None = None, min_rating: float | None = None, time: str | None = None,
                               name: str | None = None, force: bool = False) -> tuple[Path, list[str]]:
    """Write a recommendation config for an interaction log; returns its path and notes on the columns."""
    from lamina.config import validate_config
    from lamina.data.read import read_table

    data, output = Path(data), Path(output)
    if output.exists() and not force:
        raise LaminaError(f"{output} already exists; pass --force to overwrite it or -o to write elsewhere")
    frame = read_table(data)
    for role, column in (("--user", user), ("--item", item), ("--rating", rating), ("--time", time)):
        if column is not None and column not in frame.columns:
            shown = ", ".join(repr(c) for c in list(frame.columns)[:10])
            raise LaminaError(where(str(data), f"{role} column {column!r} not found; columns are {shown}"))
    if min_rating is not None and rating is None:
        raise LaminaError("--min-rating needs --rating (the column it thresholds)")
    if user == item:
        raise LaminaError("--user and --item name the same column; give the user ID and the item ID columns")
    notes: list[str] = []
    item_features: list[dict[str, Any]] = []
    user_features: list[dict[str, Any]] = []
    title = None
    for column in frame.columns:
        if column in (user, item, rating, time):
            continue
        values = frame[column]
        text = values.dropna().astype(str)
        if _per_group_constant(frame, item, column):
            if text.str.contains("|", regex=False).mean() > 0.2:
                item_features.append({"name": column, "type": "set"})
            elif pd.api.types.is_numeric_dtype(values):
                item_features.append({"name": column, "type": "number"})
            elif values.nunique() > 0.5 * frame[item].nunique():
                title = title or column
                notes.append(f"{column!r}: item names, shown beside recommendations (no text input type yet)")
                continue
            else:
                item_features.append({"name": column, "type": "category"})
            notes.append(f"{column!r}: item feature ({item_features[-1]['type']})")
        elif _per_group_constant(frame, user, column):
            kind = "number" if pd.api.types.is_numeric_dtype(values) else "category"
            user_features.append({"name": column, "type": kind})
            notes.append(f"{column!r}: user feature ({kind})")
        else:
            notes.append(f"left out {column!r}: varies within a user and within an item")
    config = {
        "name": name or data.stem,
        "task": "recommendation",
        "data": {"path": os.path.relpath(data.resolve(), output.resolve().parent)},
        "recommendation": {
            "user": user, "item": item, "rating": rating, "min_rating": min_rating, "time": time, "title": title,
            "user_features": user_features, "item_features": item_features,
            "history": True, "recent": 10, "embedding_dim": 64, "loss": "softmax", "popularity_correction": True,
            "temperature": 0.05, "k": 10,
            "baselines": ["popularity", "ease"], "ease_lambda": 500.0,
        },
        "hidden": {"depth": 1, "width": 128, "dropout": 0.1, "norm": "layer", "residual": True, "activation": "relu"},
        "trainer": {"epochs": 20, "batch_size": 512, "learning_rate": 0.003, "weight_decay": 0.0001,
                    "schedule": "cosine", "grad_clip": 1.0, "early_stopping": {"patience": 5, "metric": "loss"},
                    "seed": 42, "device": "auto"},
    }
    validate_config(config, source="generated config")  # what we write must be what we accept
    header = (
        f"# Lamina recommendation config for {data.name} ({len(frame)} rows).\n"
        "# Two towers (user, item) built from input types; trained on positives with in-batch negatives\n"
        "# (loss: softmax, popularity-corrected) or bpr; compared with most-popular and EASE on a per-user split\n"
        "# (last interaction test, the one before validation; temporal when `time` is set, else random).\n"
        "# Early stopping watches validation NDCG@k. Item/user features: any input type (set = 'A|B|C').\n"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return output, notes


def _model(model_dir: str | os.PathLike):
    from lamina.store import load

    model = load(model_dir)
    if getattr(model, "task", None) != "recommendation":
        raise LaminaError(f"{model_dir}: not a recommendation model (train one with `task: recommendation`)")
    return model


def _show(frame: pd.DataFrame, title: str) -> None:
    table = Table()
    for column in frame.columns:
        table.add_column(column, justify="right" if column in ("rank", "score") else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*[_fmt(v) if isinstance(v, float) else str(v) for v in row])
    console = Console(width=max(Console().width, 100))
    console.print(title, highlight=False, soft_wrap=True)  # the heading whole, however narrow the table
    console.print(table)


def recommend(model_dir: str | os.PathLike, user: str | None = None, users_file: str | os.PathLike | None = None,
              k: int = 10, output: str | os.PathLike | None = None) -> pd.DataFrame:
    """``lamina recommend``: top-k unseen items for one user (a table) or every user of a file (a table or -o)."""
    from lamina.data.read import read_table
    from lamina.data.write import write_table

    if (user is None) == (users_file is None):
        raise LaminaError("give --user ID or --users FILE (one of them)")
    model = _model(model_dir)
    if users_file is not None:
        recs = model.recommend(read_table(users_file), k)
    else:
        recs = model.recommend([user], k)
    if output is not None:
        write_table(recs, Path(output))
        print(f"wrote {len(recs)} recommendations for {recs['user'].nunique()} user(s) to {output}")
    else:
        notes = [n for n in recs["note"].unique() if n]
        for user_id, part in recs.groupby("user", sort=False):
            note = next((n for n in part["note"] if n), "")
            _show(part.drop(columns=["user", "note"]), f"top {k} for user {user_id}" + (f" ({note})" if note else ""))
        if notes:
            print("note: " + "; ".join(notes))
    return recs


def similar(model_dir: str | os.PathLike, item: str, k: int = 10) -> pd.DataFrame:
    """``lamina similar``: the k items nearest to ITEM in the learned item space."""
    model = _model(model_dir)
    found = model.similar(item, k)
    title = model.title_of(item)
    _show(found, f"items like {item}" + (f" ({title})" if title else ""))
    return found
