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
from lamina.explain import html_page, table_html
from lamina.predictor import Predictor

log = logging.getLogger("lamina")
REPORT = "report.html"
EXPLAIN_ROWS = 300  # rows explained for the report (Integrated Gradients costs ~steps forward passes per row)
EXPLAIN_IMAGES = 64  # for models with an image input: a CNN pass per step is dearer


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{plots.data_uri(data)}">'


def _p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _config_section(info: dict[str, Any]) -> str:
    config = info["config"]
    inputs = [[s["name"], s["type"], json.dumps(s.get("options") or {})] for s in config["inputs"]]
    outputs = [[s["name"], s["type"], json.dumps(s.get("options") or {})] for s in config["outputs"]]
    hidden = config.get("hidden", {})
    trainer = config.get("trainer", {})
    return (table_html(["input", "type", "options"], inputs) + table_html(["output", "type", "options"], outputs) +
            table_html(["hidden", "value"], [[k, str(v)] for k, v in hidden.items()]) +
            table_html(["trainer", "value"], [[k, str(v)] for k, v in trainer.items()]) +
            _p(f"best epoch {info.get('best_epoch', '?')} of {info.get('epochs_run', '?')}; created "
               f"{info.get('created', '?')}; versions {', '.join(f'{k} {v}' for k, v in info.get('versions', {}).items())}"))


def _data_section(info: dict[str, Any], frames: dict[str, pd.DataFrame] | None) -> str:
    rows = []
    outputs = [s["name"] for s in info["config"]["outputs"]]
    for split, values in info.get("metrics", {}).items():
        count = next(iter(values.values()), {}).get("rows", "")
        extra = ""
        if frames is not None and split in frames and outputs[0] in frames[split]:
            counts = frames[split][outputs[0]].value_counts()
            if len(counts) <= 12:
                extra = ", ".join(f"{k}: {v}" for k, v in counts.items())
        rows.append([split, count, extra])
    return table_html(["split", "rows scored", f"'{outputs[0]}' values" if outputs else ""], rows)


def _curves(folder: Path) -> str:
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return _p("no metrics.jsonl in the model directory")
    history = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not history:
        return _p("metrics.jsonl is empty")
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
    return _img(plots.png(fig), "learning curves")


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
            parts.append(_img(_confusion_png(confusion, output), f"{output} confusion matrix"))
    return "".join(parts) or _p("no metrics recorded")


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


def _prediction_section(predictor: Predictor, test: pd.DataFrame) -> str:
    """ROC and PR curves with the chosen threshold, and calibration, per class output on the test rows."""
    from scipy.special import expit, softmax
    from sklearn import metrics as skm
    from sklearn.calibration import calibration_curve

    from lamina.outputs.classes import truth_index

    prep = predictor.preprocessor
    test = prep.drop_bad_inputs(prep.drop_missing_targets(test, "test"), "test")
    raw = predictor.predict_raw(test)
    plt = plots.pyplot()
    parts = []
    for t in prep.outputs:
        if t.kind == "binary":
            truth = truth_index(test[t.name], t.state["classes"])
            keep = truth >= 0
            y, p = truth[keep], expit(raw[t.name][keep, 0])
            if len(np.unique(y)) < 2:
                continue
            threshold = t.state["threshold"]
            at = p >= threshold
            fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
            fpr, tpr, _ = skm.roc_curve(y, p)
            axes[0].plot(fpr, tpr, label=f"AUC {skm.roc_auc_score(y, p):.3f}")
            axes[0].plot([0, 1], [0, 1], "--", color="gray", linewidth=0.8)
            axes[0].scatter([(at & (y == 0)).sum() / max((y == 0).sum(), 1)], [(at & (y == 1)).sum() / max(y.sum(), 1)],
                            color="red", zorder=3, label=f"threshold {threshold:.3f}")
            axes[0].set_xlabel("false positive rate"), axes[0].set_ylabel("true positive rate")
            axes[0].set_title(f"ROC, positive = {t.state['classes'][1]}", fontsize=10)
            precision, recall, _ = skm.precision_recall_curve(y, p)
            axes[1].plot(recall, precision, label=f"AP {skm.average_precision_score(y, p):.3f}")
            axes[1].scatter([(at & (y == 1)).sum() / max(y.sum(), 1)], [(at & (y == 1)).sum() / max(at.sum(), 1)],
                            color="red", zorder=3, label=f"threshold {threshold:.3f}")
            axes[1].set_xlabel("recall"), axes[1].set_ylabel("precision"), axes[1].set_title("precision-recall", fontsize=10)
            observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
            _calibration(axes[2], predicted, observed, skm.brier_score_loss(y, p))
            for ax in axes:
                ax.legend(fontsize=8), ax.grid(alpha=0.3)
            parts.append(f"<h3>{html.escape(t.name)}</h3>" + _img(plots.png(fig), f"{t.name} ROC PR calibration"))
        elif t.kind == "category":
            truth = truth_index(test[t.name], t.state["classes"])
            keep = truth >= 0
            proba = softmax(raw[t.name][keep], axis=1)
            confidence, correct = proba.max(1), (proba.argmax(1) == truth[keep]).astype(float)
            fig, ax = plt.subplots(figsize=(4.5, 3.8))
            observed, predicted = calibration_curve(correct, confidence, n_bins=10, strategy="quantile") \
                if len(np.unique(correct)) > 1 else (np.array([correct.mean()]), np.array([confidence.mean()]))
            _calibration(ax, predicted, observed, float(np.mean((confidence - correct) ** 2)), "confidence")
            ax.legend(fontsize=8), ax.grid(alpha=0.3)
            parts.append(f"<h3>{html.escape(t.name)}</h3>" + _img(plots.png(fig), f"{t.name} calibration"))
        elif t.sequence:
            parts.append(f"<h3>{html.escape(t.name)}</h3>" + _generated_table(prep, t, test, raw[t.name]))
        else:
            values = t._values(raw[t.name]) if hasattr(t, "_values") else raw[t.name][:, 0]
            truth = pd.to_numeric(test[t.name], errors="coerce").to_numpy()
            fig, ax = plt.subplots(figsize=(4.5, 4))
            ax.scatter(truth, values, s=6, alpha=0.6)
            low, high = np.nanmin(truth), np.nanmax(truth)
            ax.plot([low, high], [low, high], "--", color="gray")
            ax.set_xlabel("true"), ax.set_ylabel("predicted"), ax.set_title(f"'{t.name}' on test", fontsize=10)
            parts.append(f"<h3>{html.escape(t.name)}</h3>" + _img(plots.png(fig), f"{t.name} predicted vs true"))
    return "".join(parts) or _p("no class outputs to draw curves for")


def _generated_table(prep: Any, output: Any, test: pd.DataFrame, raw: np.ndarray, rows: int = 20) -> str:
    """Generated texts beside their references on test rows, the wrong ones first: where a reader sees what fails."""
    predicted = output.texts(raw)
    truth = [str(v).strip() for v in test[output.name]]
    wrong = [i for i, (p, t) in enumerate(zip(predicted, truth)) if p != t]
    shown = (wrong + [i for i in range(len(truth)) if i not in set(wrong)])[:rows]
    sources = [t.name for t in prep.inputs if t.kind == "text"][:1]
    header = [*sources, "reference", "generated", "exact"]
    body = [[*(str(test[s].iloc[i]) for s in sources), truth[i], predicted[i], "yes" if predicted[i] == truth[i] else "no"]
            for i in shown]
    return (_p(f"{len(truth) - len(wrong)} of {len(truth)} test rows generated exactly; {len(wrong)} wrong "
               f"(shown first, up to {rows} rows)") + table_html(header, body))


def _calibration(ax: Any, predicted: np.ndarray, observed: np.ndarray, brier: float, what: str = "predicted probability"
                 ) -> None:
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=0.8)
    ax.plot(predicted, observed, marker="o", label=f"Brier {brier:.4f}")
    ax.set_xlabel(what), ax.set_ylabel("observed frequency"), ax.set_title("calibration (test)", fontsize=10)


def _comparison_section(folder: Path) -> str:
    path = folder / "compare.json"
    if not path.is_file():
        return _p("no comparison yet: `lamina compare CONFIG` trains the classical counterparts on the same split")
    from lamina.compare import chart, table_rows

    result = json.loads(path.read_text(encoding="utf-8"))
    header, rows = table_rows(result)
    verdicts = "".join(_p(v) for v in result.get("verdicts", {}).values())
    return table_html(header, rows) + verdicts + _img(chart(result), "comparison chart")


def _explain_section(predictor: Predictor, frame: pd.DataFrame) -> str:
    from lamina.explain import charts, explain_rows, faithfulness, faithfulness_html, permutation_importance

    from lamina.explain import PIXEL_KINDS

    cap = EXPLAIN_IMAGES if any(t.kind in PIXEL_KINDS for t in predictor.preprocessor.inputs) else EXPLAIN_ROWS
    frame = frame.sample(cap, random_state=0) if len(frame) > cap else frame
    explained = explain_rows(predictor, frame)
    importance = permutation_importance(predictor, frame)
    found = charts(predictor, frame, explained, importance)
    check = faithfulness(predictor, frame)
    return (_p(f"Integrated Gradients of {explained['score']} on {len(explained['explanations'])} test rows; "
               f"baselines: {explained['baseline']}. Permutation importance: the drop in {importance['metric']} "
               "when a column is shuffled.") +
            "".join(_img(d, n) for n, d in found.items()) +
            "<h3>Faithfulness (deletion check)</h3>" + faithfulness_html(check))


def _probe_section(predictor: Predictor, frame: pd.DataFrame) -> str:
    from lamina import probes

    result = probes.probe(predictor, frame)
    images = probes.plots(result)
    rows = [[name, layer["units"], layer["score"]] for name, layer in result["layers"].items()]
    return (_p(f"A linear probe per layer, fitted on {result['train_rows']} rows and scored on {result['test_rows']} "
               "held-out rows.") + table_html(["layer", "units", f"probe {result['metric']}"], rows) +
            "".join(_img(d, n) for n, d in images.items()))


def _guard(title: str, build: Any, *args: Any) -> tuple[str, str]:
    try:
        return title, build(*args)
    except ModuleNotFoundError as e:
        return title, _p(f"not available: needs {e.name} (pip install 'lamina[explain]')")
    except LaminaError as e:  # the section does not apply to this model (e.g. probes of a text-only model)
        log.info("report section %r: %s", title, e)
        return title, _p(f"not available: {e}")
    except Exception as e:  # one failing section must not lose the page
        log.warning("report section %r left out: %s", title, e)
        return title, _p(f"not available: {type(e).__name__}: {e}")


def write_report(model_dir: str | Path, predictor: Predictor | None = None,
                 frames: dict[str, pd.DataFrame] | None = None, data: str | Path | pd.DataFrame | None = None,
                 path: str | Path | None = None) -> Path:
    """Write ``report.html`` in ``model_dir`` (or at ``path``); returns its path.

    ``frames`` (train / validation / test, as ``load_splits`` gives) or ``data`` (a labelled file or frame, used as
    the test rows) enable the sections that need predictions."""
    from lamina.store import load, read_info

    folder = Path(model_dir)
    info = read_info(folder)
    if predictor is None:
        predictor = load(folder)
    previous_cache = [t.cache_dir for t in predictor.preprocessor.inputs]
    predictor.preprocessor.set_cache_dir(None)  # a finished run's cache folder is gone: decode without one
    try:
        test = None
        if frames is not None and len(frames.get("test", [])):
            test = frames["test"]
        elif data is not None:
            test, _ = predictor._frame(data, None if isinstance(data, pd.DataFrame) else str(data))
        name = info["config"].get("name") or folder.name
        sections = [_guard("Config", _config_section, info), _guard("Data", _data_section, info, frames),
                    _guard("Learning curves", _curves, folder), _guard("Metrics", _metrics_section, info)]
        missing = _p("no labelled rows given: `lamina report` with a labelled file, or `lamina train`, draws this")
        if test is not None:
            sections.append(_guard("ROC, PR and calibration", _prediction_section, predictor, test))
        else:
            sections.append(("ROC, PR and calibration", missing))
        sections.append(_guard("Comparison with classical models", _comparison_section, folder))
        if test is not None:
            probe_rows = pd.concat([f for f in (frames or {"test": test}).values() if len(f)])
            sections.append(_guard("Explanations", _explain_section, predictor, test))
            sections.append(_guard("Layer probes", _probe_section, predictor, probe_rows))
        else:
            sections += [("Explanations", missing), ("Layer probes", missing)]
    finally:
        for t, cache in zip(predictor.preprocessor.inputs, previous_cache):
            t.cache_dir = cache
    target = Path(path) if path else folder / REPORT
    tmp = target.with_name(f".{target.name}.partial")
    tmp.write_text(html_page(f"Lamina run: {name}", sections), encoding="utf-8")
    tmp.replace(target)
    return target
