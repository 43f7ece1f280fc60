"""Each type owns its faces: no face tests a type's kind, the verdict and early stopping read the output type's own
metric direction, and the built-in types' hooks agree with what they transform (on real iris measurements)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lamina.inputs import INPUT_TYPES
from lamina.outputs import OUTPUT_TYPES

PACKAGE = Path(__file__).resolve().parents[1] / "lamina"


def test_no_face_tests_a_kind() -> None:
    """``x.kind == ...`` / ``x.kind in ...`` only inside lamina/inputs and lamina/outputs."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name in ("inputs", "outputs"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(isinstance(side, ast.Attribute) and side.attr == "kind"
                                                     for side in [node.left, *node.comparators]):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert found == []


def test_each_output_says_which_metrics_are_better_higher() -> None:
    from lamina.compare import headline

    for kind, cls in OUTPUT_TYPES.items():
        out = cls("y", cls.Options())
        assert headline(out) == (cls.primary_metric, cls.higher_is_better)
        assert out.is_higher_better(cls.primary_metric) is cls.higher_is_better
        for metric in {*cls.metric_names, *cls.lower_is_better}:
            assert out.is_higher_better(metric) is (metric not in cls.lower_is_better), (kind, metric)
            # a loss, an error, a distance, a cost or a false-alarm rate, by whatever name, must be declared lower
            lowerish = any(w in metric for w in ("loss", "rmse", "mae", "eer", "hausdorff", "cost", "fp_", "far_at"))
            assert out.is_higher_better(metric) is not lowerish, (kind, metric)


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame["species"] = np.asarray(["setosa", "versicolor", "virginica"], dtype=object)[frame.pop("target")]
    frame["wide"] = np.where(frame["petal width (cm)"] > 1.0, "yes", "no")
    frame.loc[::17, "sepal length (cm)"] = np.nan
    return frame


def fitted(kind: str, name: str, values: pd.Series):
    cls = INPUT_TYPES[kind]
    t = cls(name, cls.Options())
    t.fit(values)
    return t


@pytest.mark.parametrize("kind,column", [("number", "sepal length (cm)"), ("category", "species"), ("binary", "wide")])
def test_table_types_own_their_features_baseline_field_and_examples(iris: pd.DataFrame, kind: str, column: str) -> None:
    t = fitted(kind, column, iris[column])
    features = t.classical().features(iris[column])
    assert all(len(v) == len(iris) for v in features.tree.values())
    linear = np.concatenate(features.linear, axis=1)
    assert linear.shape[0] == len(iris) and np.isfinite(linear).all()  # the linear models get no NaN
    if t.passthrough:
        assert len(t.explain_baseline()) == t.width
    annotation, extra = t.serve_field()
    assert "description" in extra
    column_values = t.request_values(list(iris[column].head(5).where(iris[column].head(5).notna(), None)))
    assert len(column_values) == 5 and t.transform(pd.Series(column_values)).shape[0] == 5
    assert t.page_widget()["field"] in ("number", "category", "text")
    examples = t.example_values(np.random.default_rng(0), 50)
    assert t.transform(pd.Series(examples, dtype=object)).shape[0] == 50


def test_number_baseline_is_the_training_mean(iris: pd.DataFrame) -> None:
    t = fitted("number", "x", iris["sepal length (cm)"])
    mean = iris["sepal length (cm)"].mean()
    assert t.explain_baseline() == pytest.approx(t.transform(pd.Series([mean])).numpy()[0].tolist(), abs=1e-6)


def test_text_features_keep_their_vocabulary_off_the_type(iris: pd.DataFrame) -> None:
    texts = pd.Series([f"a {s} flower with {w} petals" for s, w in zip(iris["species"], iris["wide"])])
    t = INPUT_TYPES["text"]("review", INPUT_TYPES["text"].Options(vocab_size=100))
    t.fit(texts)
    before = dict(vars(t))
    featurizer = t.classical()
    featurizer.fit(texts)
    matrix = featurizer.features(texts).linear[0]
    assert matrix.shape[0] == len(texts) and matrix.nnz > 0
    assert vars(t).keys() == before.keys()  # TF-IDF lives on the featurizer, not on the deep model's type
