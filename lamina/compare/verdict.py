"""The verdict: on each output's own primary metric (``OutputType.primary_metric`` and ``higher_is_better``), does
the deep model beat, match or trail the best classical counterpart, and at what training time?"""

from __future__ import annotations

from typing import Any


def headline(output: Any) -> tuple[str, bool]:
    """The metric a verdict is about, and whether higher is better: the output type's own."""
    return output.primary_metric, output.higher_is_better


def verdict(rows: list[dict[str, Any]], output: Any) -> str:
    metric, higher = headline(output)
    mine = [r for r in rows if r["output"] == output.name]
    deep = next(r for r in mine if r["model"].startswith("lamina"))
    others = [r for r in mine if r is not deep]
    if not others:
        return "no classical counterpart"
    best = max(others, key=lambda r: r["metric_value"] if higher else -r["metric_value"])
    d, c = deep["metric_value"], best["metric_value"]
    gap = (d - c) if higher else (c - d)
    speed = deep["train_seconds"] / max(best["train_seconds"], 1e-9)
    pace = f"{speed:.0f}× the training time" if speed >= 1.5 else ("about the same training time" if speed > 0.67
                                                                     else f"{1 / speed:.0f}× less training time")
    scale = 1.0 if higher else max(abs(c), 1e-9)  # an error (lower is better) is compared relative to its size
    if abs(gap) / scale <= 0.005:
        how = f"matches {best['model']} on {metric} ({d:.4f} vs {c:.4f})"
    elif gap > 0:
        how = f"beats {best['model']} on {metric} ({d:.4f} vs {c:.4f})"
    else:
        how = f"trails {best['model']} on {metric} ({d:.4f} vs {c:.4f})"
    return f"On '{output.name}' the deep model {how}, with {pace}."


def summarise(outputs: list[Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    verdicts = {}
    for output in outputs:
        metric, _ = headline(output)
        for r in rows:
            if r["output"] == output.name:
                r["metric"], r["metric_value"] = metric, float(r["metrics"].get(metric, float("nan")))
        verdicts[output.name] = verdict(rows, output)
    return {"rows": rows, "verdicts": verdicts}
