"""``report.html``: everything about a run in one self-contained page (plots embedded as base64 PNG, no scripts,
nothing fetched): config and data summary, learning curves, metrics, confusion matrix, ROC and PR curves with the
chosen threshold, calibration, the comparison with classical models, top explanations and layer probes.

Sections that need predictions (curves, explanations, probes) use the frames given (``lamina train`` passes its
splits) or a labelled ``data`` file; without them the page says so and shows what the model directory holds.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lamina import plots
from lamina.errors import LaminaError
from lamina.pages import html_page, img, paragraph, table_html
from lamina.anomaly.model import AnomalyModel
from lamina.predictor import Predictor

log = logging.getLogger("lamina")
REPORT = "report.html"


def _config_section(info: dict[str, Any]) -> str:
    config = info["config"]
    inputs = [[s["name"], s["type"], json.dumps(s.get("options") or {})] for s in config["inputs"]]
    outputs = [[s["name"], s["type"], json.dumps(s.get("options") or {})] for s in config["outputs"]]
    hidden = config.get("hidden", {})
    trainer = config.get("trainer", {})
    return (table_html(["input", "type", "options"], inputs) + table_html(["output", "type", "options"], outputs) +
            table_html(["hidden", "value"], [[k, str(v)] for k, v in hidden.items()]) +
            table_html(["trainer", "value"], [[k, str(v)] for k, v in trainer.items()]) +
            paragraph(f"best epoch {info.get('best_epoch', '?')} of {info.get('epochs_run', '?')}; created "
               f"{info.get('created', '?')}; versions {', '.join(f'{k} {v}' for k, v in info.get('versions', {}).items())}"))


def _data_section(info: dict[str, Any], frames: dict[str, pd.DataFrame] | None) -> str:
    rows = []  # the target's values per split: the first output's, or an anomaly model's label column's
    outputs = [s["name"] for s in info["config"]["outputs"]] or [(info["config"].get("anomaly") or {}).get("label")]
    for split, values in info.get("metrics", {}).items():
        count = next(iter(values.values()), {}).get("rows", "")
        extra = ""
        if frames is not None and split in frames and outputs[0] and outputs[0] in frames[split]:
            counts = frames[split][outputs[0]].value_counts()
            if len(counts) <= 12:
                extra = ", ".join(f"{k}: {v}" for k, v in counts.items())
        rows.append([split, count, extra])
    return table_html(["split", "rows scored", f"'{outputs[0]}' values" if outputs[0] else ""], rows)


def _curves(folder: Path) -> str:
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return paragraph("no metrics.jsonl in the model directory")
    history = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not history:
        return paragraph("metrics.jsonl is empty")
    plt = plots.pyplot()
    fig, (ax, lr) = plt.subplots(1, 2, figsize=(10, 3.4))
    epochs = [h["epoch"] for h in history]
    for key in ("train_loss", "val_loss"):
        if any(key in h for h in history):
            ax.plot(epochs, [h.get(key, np.nan) for h in history], marker=".", label=key.replace("_", " "))
    ax.set_xlabel("epoch"), ax.set_ylabel("loss"), ax.legend(), ax.grid(alpha=0.3)
    ax.set_title("learning curves", fontsize=10)
    lr.plot(epochs, [h.get("lr", np.nan) for h in history], color="gray")
    lr.set_xlabel("epoch"), lr.set_ylabel("learning rate"), lr.grid(alpha=0.3)
    lr.set_title("learning rate", fontsize=10)
    return img(plots.png(fig), "learning curves")


def _metrics_section(info: dict[str, Any]) -> str:
    metrics = info.get("metrics", {})
    splits = list(metrics)
    parts = []
    for output in dict.fromkeys(o for s in metrics.values() for o in s):
        names = [k for k in dict.fromkeys(k for s in splits for k in metrics[s].get(output, {})) if k != "confusion_matrix"]
        parts.append(f"<h3>{html.escape(output)}</h3>" + table_html(
            ["metric", *splits], [[n, *[metrics[s].get(output, {}).get(n, "") for s in splits]] for n in names]))
        confusion = metrics.get("test", metrics.get(splits[-1], {})).get(output, {}).get("confusion_matrix")
        if confusion:
            parts.append(img(_confusion_png(confusion, output), f"{output} confusion matrix"))
    return "".join(parts) or paragraph("no metrics recorded")


def _confusion_png(confusion: dict[str, Any], output: str) -> bytes:
    plt = plots.pyplot()
    m = np.asarray(confusion["matrix"])
    labels = [str(x) for x in confusion["labels"]]
    fig, ax = plt.subplots(figsize=(0.5 * len(labels) + 2.5, 0.5 * len(labels) + 2.2))
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="white" if v > m.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, fontsize=8), ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    ax.set_title(f"'{output}' confusion matrix (test)", fontsize=10)
    return plots.png(fig)


def _prediction_section(model: Any, test: pd.DataFrame) -> str:
    """The model's own section on the test rows (each output type's curves; an anomaly model's scores)."""
    return model.report_section(test) or paragraph("no class outputs to draw curves for")


def _comparison_section(folder: Path) -> str:
    path = folder / "compare.json"
    if not path.is_file():
        return paragraph("no comparison yet: `lamina compare CONFIG` trains the classical counterparts on the same split")
    # Shown as `lamina compare` wrote it (its table and chart), so the report needs nothing from the comparison's code.
    result = json.loads(path.read_text(encoding="utf-8"))
    table = result.get("table", {"header": [], "rows": []})
    verdicts = "".join(paragraph(v) for v in result.get("verdicts", {}).values())
    chart = folder / "compare.png"
    return (table_html(table["header"], table["rows"]) + verdicts +
            (img(chart.read_bytes(), "comparison chart") if chart.is_file() else ""))


def _explain_section(predictor: Predictor, frame: pd.DataFrame) -> str:
    from lamina.explain import charts, explain_rows, faithfulness, faithfulness_html, permutation_importance

    prep = predictor.preprocessor  # each type says how dear its explanation is
    cap = min([t.explain_rows for t in prep.inputs] + [t.explain_rows for t in prep.outputs[:1] if t.explain_rows])
    frame = frame.sample(cap, random_state=0) if len(frame) > cap else frame
    explained = explain_rows(predictor, frame)
    importance = permutation_importance(predictor, frame)
    found = charts(predictor, frame, explained, importance)
    check = faithfulness(predictor, frame)
    return (paragraph(f"Integrated Gradients of {explained['score']} on {len(explained['explanations'])} test rows; "
               f"baselines: {explained['baseline']}. Permutation importance: the drop in {importance['metric']} "
               "when a column is shuffled.") +
            "".join(img(d, n) for n, d in found.items()) +
            "<h3>Faithfulness (deletion check)</h3>" + faithfulness_html(check))


def _probe_section(predictor: Predictor, frame: pd.DataFrame) -> str:
    from lamina import probes

    result = probes.probe(predictor, frame)
    images = probes.plots(result)
    rows = [[name, layer["units"], layer["score"]] for name, layer in result["layers"].items()]
    return (paragraph(f"A linear probe per layer, fitted on {result['train_rows']} rows and scored on {result['test_rows']} "
               "held-out rows.") + table_html(["layer", "units", f"probe {result['metric']}"], rows) +
            "".join(img(d, n) for n, d in images.items()))


def _guard(title: str, build: Any, *args: Any) -> tuple[str, str]:
    try:
        return title, build(*args)
    except ModuleNotFoundError as e:
        return title, paragraph(f"not available: needs {e.name} (pip install 'lamina[explain]')")
    except LaminaError as e:  # the section does not apply to this model (e.g. probes of a text-only model)
        log.info("report section %r: %s", title, e)
        return title, paragraph(f"not available: {e}")
    except Exception as e:  # one failing section must not lose the page
        log.warning("report section %r left out: %s", title, e)
        return title, paragraph(f"not available: {type(e).__name__}: {e}")


def write_report(model_dir: str | Path, predictor: Predictor | AnomalyModel | None = None,
                 frames: dict[str, pd.DataFrame] | None = None, data: str | Path | pd.DataFrame | None = None,
                 path: str | Path | None = None, extra: list[tuple[str, str]] | None = None) -> Path:
    """Write ``report.html`` in ``model_dir`` (or at ``path``); returns its path.

    ``frames`` (train / validation / test, as ``load_splits`` gives) or ``data`` (a labelled file or frame, used as
    the test rows) enable the sections that need predictions. ``extra`` sections (title, HTML) come last: a face's
    own (``lamina tune``'s search)."""
    from lamina.store import load, read_info

    folder = Path(model_dir)
    info = read_info(folder)
    if predictor is None:
        predictor = load(folder)
    previous_cache = [t.cache_dir for t in predictor.input_types]
    for t in predictor.input_types:  # a finished run's cache folder is gone: decode without one
        t.cache_dir = None
    try:
        test = None
        if frames is not None and len(frames.get("test", [])):
            test = frames["test"]
        elif data is not None:
            test, _ = predictor._frame(data, None if isinstance(data, pd.DataFrame) else str(data))
        name = info["config"].get("name") or folder.name
        sections = [_guard("Config", _config_section, info), _guard("Data", _data_section, info, frames),
                    _guard("Learning curves", _curves, folder), _guard("Metrics", _metrics_section, info)]
        missing = paragraph("no labelled rows given: `lamina report` with a labelled file, or `lamina train`, draws this")
        title = predictor.report_title
        sections.append(_guard(title, _prediction_section, predictor, test) if test is not None else (title, missing))
        sections.append(_guard("Comparison with classical models", _comparison_section, folder))
        if test is not None:
            probe_rows = pd.concat([f for f in (frames or {"test": test}).values() if len(f)])
            sections.append(_guard("Explanations", _explain_section, predictor, test))
            sections.append(_guard("Layer probes", _probe_section, predictor, probe_rows))
        else:
            sections += [("Explanations", missing), ("Layer probes", missing)]
        sections += extra or []
    finally:
        for t, cache in zip(predictor.input_types, previous_cache):
            t.cache_dir = cache
    target = Path(path) if path else folder / REPORT
    tmp = target.with_name(f".{target.name}.partial")
    tmp.write_text(html_page(f"Lamina run: {name}", sections), encoding="utf-8")
    tmp.replace(target)
    return target
