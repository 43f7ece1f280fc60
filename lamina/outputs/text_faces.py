"""The text output's faces: its classical counterparts for ``lamina compare`` (copying the source text, and a
translation memory: the training target whose source is nearest by cosine of TF-IDF character 2-4 grams -- the
classical way to reuse past translations) and its report section (generated texts beside their references)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from lamina.errors import LaminaError
from lamina.inputs.text import as_text
from lamina.pages import paragraph, table_html


def _source(inputs: list[Any]) -> str:
    sources = [t.name for t in inputs if t.free_text]
    if not sources:
        raise LaminaError("a text output's classical counterparts copy or look up a text input; the model has none")
    return sources[0]


def counterparts(output: Any, inputs: list[Any], split: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.neighbors import NearestNeighbors

    source, train, test = _source(inputs), split["train"], split["test"]
    rows = []
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


def generated_table(output: Any, inputs: list[Any], test: pd.DataFrame, raw: np.ndarray, rows: int = 20) -> str:
    """Generated texts beside their references on test rows, the wrong ones first: where a reader sees what fails."""
    predicted = output.texts(raw)
    truth = [str(v).strip() for v in test[output.name]]
    wrong = [i for i, (p, t) in enumerate(zip(predicted, truth)) if p != t]
    shown = (wrong + [i for i in range(len(truth)) if i not in set(wrong)])[:rows]
    sources = [t.name for t in inputs if t.free_text][:1]
    header = [*sources, "reference", "generated", "exact"]
    body = [[*(str(test[s].iloc[i]) for s in sources), truth[i], predicted[i], "yes" if predicted[i] == truth[i] else "no"]
            for i in shown]
    return (paragraph(f"{len(truth) - len(wrong)} of {len(truth)} test rows generated exactly; {len(wrong)} wrong "
                      f"(shown first, up to {rows} rows)") + table_html(header, body))
