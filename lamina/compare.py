"""The classical counterpart: what does deep learning buy on this data? The deep model and classical models with
engineered features, trained on exactly the same train / validation / test split (``load_splits``), scored with the
same metrics (each output type's own ``metrics``, the decision threshold tuned on validation the same way).

Features per input type, in ``FEATURES`` (one entry per type; text plugs in with e.g. TF-IDF):

* number: the raw value (NaN for LightGBM; mean-filled plus a missing flag for the linear model);
* binary: 0 / 1 (NaN when missing) plus the missing flag;
* category: a pandas ``category`` column for LightGBM, one-hot for the linear model (training vocabulary);
* set: multi-hot over the training vocabulary;
* image: histogram of oriented gradients (numpy) plus the pixels, → standardise → PCA → an RBF SVM;
* text: TF-IDF of word 1-2 grams and character 2-5 grams (fitted on the training split), → logistic regression.
* timeseries: per-channel summary statistics (mean, std, min, max, quantiles, slope, roughness, length).
* audio: MFCC (DCT of the type's log-mel) mean and std per coefficient, and of the deltas, per clip.

Tables get LightGBM (early stopping on validation) and a linear model (logistic regression, ridge for numbers);
anything with an image gets HOG/pixels + PCA + SVM. Inputs are transformed by the deep model's own fitted types,
so both sides see the same vocabulary, image size and decoding.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from lamina.errors import LaminaError
from lamina.predictor import Predictor


# --- features per input type ----------------------------------------------------------------------------------------

@dataclass
class Features:
    tree: dict[str, Any]  # column name → 1-D array or pandas Categorical (LightGBM)
    linear: list[np.ndarray]  # 2-D numeric blocks without NaN (linear model, SVM)
    image: bool = False
    text: bool = False  # sparse TF-IDF blocks: a logistic regression on them (no LightGBM, no scaling)


def _number(t: Any, values: pd.Series) -> Features:
    x = t.transform(values).numpy().astype(np.float64)  # scaled value, missing flag
    raw = np.where(x[:, 1] > 0, np.nan, x[:, 0])
    return Features({t.name: raw}, [x])


def _binary(t: Any, values: pd.Series) -> Features:
    x = t.transform(values).numpy().astype(np.float64)
    return Features({t.name: np.where(x[:, 1] > 0, np.nan, x[:, 0])}, [x])


def _category(t: Any, values: pd.Series) -> Features:
    index = t.transform(values).numpy()  # 0 unknown, 1 missing, 2.. the vocabulary
    vocabulary = t.state["vocabulary"]
    codes = np.where(index >= 2, index - 2, -1)
    tree = pd.Categorical.from_codes(codes, categories=vocabulary) if vocabulary else np.full(len(index), np.nan)
    onehot = np.zeros((len(index), len(vocabulary) + 2))
    onehot[np.arange(len(index)), index] = 1.0  # columns: unknown, missing, the vocabulary
    return Features({t.name: tree}, [onehot])


def _set(t: Any, values: pd.Series) -> Features:
    index = t.transform(values).numpy()
    hot = np.zeros((len(index), len(t.state["vocabulary"]) + 2))
    np.put_along_axis(hot, index, 1.0, axis=1)
    hot[:, 0] = 0.0  # padding
    return Features({f"{t.name}={v}": hot[:, i + 2] for i, v in enumerate(t.state["vocabulary"])}, [hot[:, 1:]])


def hog(images: np.ndarray, cells: int = 4, bins: int = 9) -> np.ndarray:
    """Histograms of oriented gradients of uint8 (n, C, H, W) images: a ``cells`` × ``cells`` grid of unsigned
    orientation histograms (gradient-magnitude weighted), L2-normalised over 2 × 2 blocks of cells (Dalal & Triggs)."""
    n, _, height, width = images.shape
    g = images.astype(np.float32).mean(1)
    gx, gy = np.zeros_like(g), np.zeros_like(g)
    gx[:, :, 1:-1] = g[:, :, 2:] - g[:, :, :-2]
    gy[:, 1:-1, :] = g[:, 2:, :] - g[:, :-2, :]
    magnitude = np.hypot(gx, gy)
    angle = np.degrees(np.arctan2(gy, gx)) % 180
    b = np.minimum((angle / (180 / bins)).astype(np.int64), bins - 1)
    cy = np.minimum(np.arange(height) * cells // height, cells - 1)
    cx = np.minimum(np.arange(width) * cells // width, cells - 1)
    cell = (cy[:, None] * cells + cx[None, :])[None]  # (1, H, W)
    index = (np.arange(n)[:, None, None] * cells * cells + cell) * bins + b
    hist = np.bincount(index.ravel(), weights=magnitude.ravel(), minlength=n * cells * cells * bins)
    hist = hist.reshape(n, cells, cells, bins)
    blocks = np.concatenate([hist[:, :-1, :-1], hist[:, 1:, :-1], hist[:, :-1, 1:], hist[:, 1:, 1:]], axis=3)
    blocks /= np.sqrt((blocks ** 2).sum(3, keepdims=True) + 1e-6)
    return blocks.reshape(n, -1)


def _image(t: Any, values: pd.Series) -> Features:
    pixels = t.transform(values).numpy()
    stats = np.c_[pixels.mean((2, 3)), pixels.std((2, 3))]
    return Features({}, [hog(pixels), pixels.reshape(len(pixels), -1) / 255.0, stats / 255.0], image=True)


def _text(t: Any, values: pd.Series) -> Features:
    """TF-IDF word 1-2 grams + char 2-5 grams, fitted on the first frame seen (``counterparts`` passes train first)."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    from lamina.inputs.text import as_text

    texts = [as_text(v) for v in values]
    if getattr(t, "_tfidf", None) is None:
        t._tfidf = [TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=t.options.lowercase),
                    TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                                    lowercase=t.options.lowercase, max_features=200_000)]
        for v in t._tfidf:
            v.fit(texts)
    return Features({}, [hstack([v.transform(texts) for v in t._tfidf]).tocsr()], text=True)


FEATURES: dict[str, Callable[[Any, pd.Series], Features]] = {
    "number": _number, "binary": _binary, "category": _category, "set": _set, "image": _image, "text": _text,
}


def _timeseries(t: Any, values: pd.Series) -> Features:
    """Per-channel summary statistics (mean, std, quantiles, slope, roughness, length) of the standardised readings."""
    from lamina.inputs.timeseries import SUMMARY, summary_features

    x = summary_features(t.transform(values).numpy())
    names = [f"{t.name}_c{c}_{s}" for c in range(int(t.state["channels"])) for s in SUMMARY]
    return Features(dict(zip(names, x.T)), [x])


FEATURES["timeseries"] = _timeseries


def _audio(t: Any, values: pd.Series) -> Features:
    """MFCCs (the DCT of the type's own cached log-mel) summarised per clip: mean and std of each coefficient and
    of its frame-to-frame delta: the classical keyword-spotting features, for LightGBM and the linear model."""
    from lamina.inputs.audio_encoder import dct_matrix

    logmel = t.transform(values).numpy().astype(np.float32)
    mfcc = np.einsum("kb,nbt->nkt", dct_matrix(logmel.shape[1], min(20, logmel.shape[1])).numpy(), logmel)
    delta = np.diff(mfcc, axis=2)
    x = np.concatenate([mfcc.mean(2), mfcc.std(2), delta.mean(2), delta.std(2)], axis=1).astype(np.float64)
    k = mfcc.shape[1]
    names = [f"{t.name}_{stat}{i}" for stat in ("mfcc_mean", "mfcc_std", "delta_mean", "delta_std") for i in range(k)]
    return Features(dict(zip(names, x.T)), [x])


FEATURES["audio"] = _audio


def features(predictor: Predictor, frame: pd.DataFrame) -> tuple[pd.DataFrame, Any, str | None]:
    """(LightGBM frame, linear matrix, "image" / "text" / None) of a frame's inputs, with the deep model's types.
    With a text input the matrix is sparse (TF-IDF beside the other columns' blocks)."""
    tree: dict[str, Any] = {}
    linear: list[Any] = []
    image = text = False
    for t in predictor.preprocessor.inputs:
        if t.kind not in FEATURES:
            raise LaminaError(f"input '{t.name}': no classical features for type {t.kind!r} yet "
                              f"(known: {', '.join(FEATURES)})")
        f = FEATURES[t.kind](t, frame[t.name])
        tree.update(f.tree)
        linear += f.linear
        image |= f.image
        text |= f.text
    if text:
        from scipy.sparse import csr_matrix, hstack

        matrix = hstack([b if not isinstance(b, np.ndarray) else csr_matrix(b) for b in linear]).tocsr()
        return pd.DataFrame(tree, index=frame.index), matrix, "image" if image else "text"
    return pd.DataFrame(tree, index=frame.index), np.concatenate(linear, axis=1), "image" if image else None


# --- the classical models -------------------------------------------------------------------------------------------

def _raw(output: Any, model: Any, x: Any) -> np.ndarray:
    """A classical model's predictions as the output type's raw head values (logit, log-probabilities, value)."""
    if output.kind == "number":
        return np.asarray(model.predict(x), dtype=np.float64)[:, None]
    proba = np.full((x.shape[0], len(output.state["classes"])), 1e-7)
    proba[:, np.asarray(model.classes_, dtype=int)] = model.predict_proba(x)
    proba = np.clip(proba, 1e-7, 1 - 1e-7)
    if output.kind == "binary":
        p = proba[:, 1] / proba.sum(1)
        return np.log(p / (1 - p))[:, None]
    return np.log(proba / proba.sum(1, keepdims=True))


def _models(output: Any, image: bool | str | None, seed: int, folds: int = 3) -> dict[str, Callable[[], Any]]:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR

    classes = output.kind != "number"
    if image == "text":  # sparse TF-IDF (values in [0, 1]): a linear model on it as it is
        def tfidf() -> Any:
            return LogisticRegression(C=10.0, max_iter=2000) if classes else Ridge()
        return {"tfidf+logistic" if classes else "tfidf+ridge": tfidf}
    if image:
        def svm() -> Any:
            if not classes:
                return make_pipeline(StandardScaler(), PCA(0.95, svd_solver="full", random_state=seed), SVR())
            # probabilities by Platt scaling fitted out of fold (SVC(probability=True) is deprecated)
            svc = CalibratedClassifierCV(SVC(C=10, random_state=seed), ensemble=False, cv=folds)
            return make_pipeline(StandardScaler(), PCA(0.95, svd_solver="full", random_state=seed), svc)
        return {"hog+pca+svm": svm}

    def lightgbm() -> Any:
        import lightgbm as lgb

        kind = lgb.LGBMClassifier if classes else lgb.LGBMRegressor
        return kind(n_estimators=1000, random_state=seed, n_jobs=1, verbose=-1)

    def linear() -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000) if classes else Ridge())

    return {"lightgbm": lightgbm, "logistic" if classes else "ridge": linear}


def _clean(prep: Any, frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows ``lamina.training`` scores: with a target, with usable inputs, of classes seen in training."""
    frame = prep.drop_missing_targets(frame, name)
    frame = prep.drop_bad_inputs(frame, name)
    return prep.drop_unseen_classes(frame, name) if name != "train" else frame


def counterparts(predictor: Predictor, frames: dict[str, pd.DataFrame], seed: int = 42) -> list[dict[str, Any]]:
    """Train the classical models on ``frames['train']`` (LightGBM stops early on validation), tune the decision
    threshold on validation, score on test: one row per (model, output) with metrics and times."""
    prep = predictor.preprocessor
    if any(t.sequence for t in prep.outputs):
        return _text_counterparts(predictor, {name: _clean(prep, frame, name) for name, frame in frames.items()})
    try:
        import lightgbm as lgb
    except ModuleNotFoundError:
        raise LaminaError("the classical counterparts need LightGBM: pip install 'lamina[classical]'") from None

    split = {name: _clean(prep, frame, name) for name, frame in frames.items() if len(frame)}
    split = {"train": split.pop("train"), **split}  # text features (TF-IDF) fit on the first frame: the training one
    for t in prep.inputs:
        t.__dict__.pop("_tfidf", None)
    rows = []
    for output in prep.outputs:
        y = {name: output.transform(frame[output.name]).numpy() for name, frame in split.items()}
        started = time.perf_counter()
        x = {}
        for name, frame in split.items():
            if name == "test":
                continue
            x[name] = features(predictor, frame)
        feature_seconds = time.perf_counter() - started
        image = x["train"][2]
        folds = 3 if output.kind == "number" else int(max(2, min(3, np.bincount(y["train"]).min())))
        for model_name, make in _models(output, image, seed, folds).items():
            started = time.perf_counter()
            model = make()
            use = (lambda f: f[0]) if model_name == "lightgbm" else (lambda f: f[1])
            if model_name == "lightgbm" and "validation" in x:
                model.fit(use(x["train"]), y["train"], eval_X=(use(x["validation"]),), eval_y=(y["validation"],),
                          callbacks=[lgb.early_stopping(50, verbose=False)])
            else:
                model.fit(use(x["train"]), y["train"])
            fitted = copy.deepcopy(output)
            if "validation" in x and output.kind == "binary":
                fitted.calibrate(_raw(output, model, use(x["validation"])), split["validation"][output.name])
            train_seconds = time.perf_counter() - started + feature_seconds
            started = time.perf_counter()
            test = features(predictor, split["test"])
            raw = _raw(output, model, use(test))
            predict_seconds = time.perf_counter() - started
            metrics = {"rows": len(split["test"]), **fitted.metrics(split["test"][output.name], raw)}
            rows.append({"model": model_name, "output": output.name, "train_seconds": train_seconds,
                         "predict_seconds": predict_seconds, "metrics": metrics})
    return rows


def _text_counterparts(predictor: Predictor, split: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """For a generated text output: copying the source text, and a translation memory — the training target whose
    source is nearest (cosine of TF-IDF character 2-4 grams) — the classical way to reuse past translations."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.neighbors import NearestNeighbors

    from lamina.inputs.text import as_text

    prep = predictor.preprocessor
    sources = [t.name for t in prep.inputs if t.kind == "text"]
    if not sources:
        raise LaminaError("a text output's classical counterparts copy or look up a text input; the model has none")
    source, train, test = sources[0], split["train"], split["test"]
    rows = []
    for output in (t for t in prep.outputs if t.sequence):
        started = time.perf_counter()
        copied = [as_text(v).strip() for v in test[source]]
        rows.append({"model": "copy source", "output": output.name, "train_seconds": 0.0,
                     "predict_seconds": time.perf_counter() - started,
                     "metrics": {"rows": len(test), **output.score_texts(test[output.name], copied)}})
        started = time.perf_counter()
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
        index = NearestNeighbors(n_neighbors=1, metric="cosine").fit(
            vectorizer.fit_transform([as_text(v) for v in train[source]]))
        targets = [as_text(v).strip() for v in train[output.name]]
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        nearest = index.kneighbors(vectorizer.transform([as_text(v) for v in test[source]]), return_distance=False)
        found = [targets[i] for i in nearest[:, 0]]
        rows.append({"model": "translation memory", "output": output.name, "train_seconds": train_seconds,
                     "predict_seconds": time.perf_counter() - started,
                     "metrics": {"rows": len(test), **output.score_texts(test[output.name], found)}})
    return rows


def deep_row(predictor: Predictor, frames: dict[str, pd.DataFrame], train_seconds: float) -> list[dict[str, Any]]:
    prep = predictor.preprocessor
    test = _clean(prep, frames["test"], "test")
    started = time.perf_counter()
    raw = predictor.predict_raw(test)
    seconds = time.perf_counter() - started
    return [{"model": "lamina (deep)", "output": t.name, "train_seconds": train_seconds, "predict_seconds": seconds,
             "metrics": {"rows": len(test), **t.metrics(test[t.name], raw[t.name])}} for t in prep.outputs]


def headline(output: Any) -> tuple[str, bool]:
    """The metric a verdict is about, and whether higher is better."""
    if output.kind == "binary":
        return "roc_auc", True
    if output.kind == "category":
        return "accuracy", True
    if output.sequence:
        return "chrf", True
    return "rmse", False


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
    scale = max(abs(c), 1e-9) if metric == "rmse" else 1.0
    if abs(gap) / scale <= 0.005:
        how = f"matches {best['model']} on {metric} ({d:.4f} vs {c:.4f})"
    elif gap > 0:
        how = f"beats {best['model']} on {metric} ({d:.4f} vs {c:.4f})"
    else:
        how = f"trails {best['model']} on {metric} ({d:.4f} vs {c:.4f})"
    return f"On '{output.name}' the deep model {how}, with {pace}."


def summarise(predictor: Predictor, rows: list[dict[str, Any]]) -> dict[str, Any]:
    verdicts = {}
    for output in predictor.preprocessor.outputs:
        metric, _ = headline(output)
        for r in rows:
            if r["output"] == output.name:
                r["metric"], r["metric_value"] = metric, float(r["metrics"].get(metric, float("nan")))
        verdicts[output.name] = verdict(rows, output)
    return {"rows": rows, "verdicts": verdicts}


def chart(result: dict[str, Any]) -> bytes:
    from lamina import plots

    shown = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "pr_auc", "r2")
    rows = result["rows"]
    metrics = [m for m in shown if all(m in r["metrics"] for r in rows)]
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
    from lamina import plots

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "compare.json", "chart": folder / "compare.png"}
    paths["json"].write_text(json.dumps(result, indent=1, default=float), encoding="utf-8")
    plots.save(chart(result), paths["chart"])
    return paths


def compare(config_path: str | Path, output_dir: str | Path = "runs", out_dir: str | Path | None = None,
            data: pd.DataFrame | None = None, verbose: bool = True) -> dict[str, Path]:
    """``lamina compare``: train the deep model (writing its model directory, as ``lamina train``) and the classical
    counterparts on the same split; print the table and a verdict, write ``compare.json`` and ``compare.png`` (in
    ``out_dir``, default the model directory, whose ``report.html`` is rewritten to include them)."""
    from lamina.data.load import load_splits
    from lamina.run import as_config, train

    parsed, base_dir, _ = as_config(config_path)
    if importlib.util.find_spec("lightgbm") is None and not any(s.type == "image" for s in parsed.inputs):
        raise LaminaError("the classical counterparts need LightGBM: pip install 'lamina[classical]'")
    started = time.perf_counter()
    predictor = train(parsed if data is not None else config_path, data=data, output_dir=output_dir, verbose=verbose)
    train_seconds = time.perf_counter() - started
    frames, _ = load_splits(parsed, base_dir, data)
    run_dir = Path(predictor.info["run_dir"])
    predictor.preprocessor.set_cache_dir(None)
    rows = deep_row(predictor, frames, train_seconds) + counterparts(predictor, frames, parsed.trainer.seed)
    result = summarise(predictor, rows)
    paths = write_comparison(result, Path(out_dir) if out_dir else run_dir)
    if out_dir and Path(out_dir) != run_dir:
        write_comparison(result, run_dir)
    try:
        from lamina.report import write_report

        paths["report"] = write_report(run_dir, predictor=predictor, frames=frames)
    except Exception as e:  # the comparison stands without its report
        import logging

        logging.getLogger("lamina").warning("report.html not written: %s", e)
    paths["run_dir"] = run_dir
    if verbose:
        print_comparison(result)
    return paths
