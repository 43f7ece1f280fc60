"""Unit tests of the input and output types: fit on training values, transform, encoder, decode, metrics."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_iris

from lamina.errors import LaminaError
from lamina.inputs import INPUT_TYPES
from lamina.outputs import OUTPUT_TYPES


def make(registry, kind, name="col", **options):
    cls = registry[kind]
    return cls(name, cls.Options(**options))


@pytest.fixture(scope="module")
def cancer():
    return load_breast_cancer(as_frame=True).frame


def test_number_standardises_with_training_statistics_and_flags_missing(cancer):
    t = make(INPUT_TYPES, "number", "mean radius")
    t.fit(cancer["mean radius"])
    x = t.transform(cancer["mean radius"])
    assert x.shape == (len(cancer), 2) and x.dtype == torch.float32
    assert abs(float(x[:, 0].mean())) < 1e-4 and abs(float(x[:, 0].std()) - 1) < 1e-2
    assert float(x[:, 1].sum()) == 0
    with_gap = cancer["mean radius"].copy()
    with_gap.iloc[3] = np.nan
    y = t.transform(with_gap)
    assert y[3, 1] == 1 and abs(float(y[3, 0])) < 1e-5  # the mean, after scaling: the centre


def test_number_minmax_and_state_round_trip(cancer):
    t = make(INPUT_TYPES, "number", normalization="minmax")
    t.fit(cancer["mean area"])
    x = t.transform(cancer["mean area"])[:, 0]
    assert float(x.min()) == pytest.approx(0) and float(x.max()) == pytest.approx(1)
    again = INPUT_TYPES["number"]("col", t.options, dict(t.state))
    assert torch.equal(again.transform(cancer["mean area"])[:, 0], x)


def test_number_names_the_row_with_a_word():
    t = make(INPUT_TYPES, "number", "age")
    with pytest.raises(LaminaError, match=r"column 'age' row 3: 'abc' is not a number"):
        t.fit(pd.Series(["1", "2", "abc", "4"]))


def test_category_vocabulary_unknown_and_missing_buckets(caplog):
    t = make(INPUT_TYPES, "category", "colour", min_frequency=2)
    t.fit(pd.Series(["red", "red", "blue", "blue", "green", None]))
    assert t.state["vocabulary"] == ["blue", "red"]  # green is rarer than min_frequency
    index = t.transform(pd.Series(["red", "blue", "green", "purple", None]))
    assert index.tolist() == [3, 2, 0, 0, 1]  # 0 unknown, 1 missing, then the vocabulary
    assert "colour" in caplog.text
    enc = t.encoder()
    assert enc(index).shape == (5, enc.out_dim)


def test_category_labels_agree_across_file_formats():
    t = make(INPUT_TYPES, "category")
    t.fit(pd.Series([1, 2, 3, 1]))
    assert t.transform(pd.Series([1.0, "2", 3])).tolist() == t.transform(pd.Series([1, 2, 3])).tolist()


def test_binary_input_positive_class_and_unseen_value(caplog):
    t = make(INPUT_TYPES, "binary", "student")
    t.fit(pd.Series(["Yes", "No", "No"]))
    assert t.state["labels"] == ["No", "Yes"]
    x = t.transform(pd.Series(["Yes", "No", None, "Maybe"]))
    assert x[:, 0].tolist() == [1.0, 0.0, 0.5, 0.5] and x[:, 1].tolist() == [0, 0, 1, 1]
    assert "student" in caplog.text


def test_binary_output_picks_rare_class_as_positive_and_tunes_threshold():
    out = make(OUTPUT_TYPES, "binary", "diagnosis")
    y = pd.Series(["benign"] * 90 + ["malignant"] * 10)
    out.fit(y)
    assert out.state["classes"] == ["benign", "malignant"]
    target = out.transform(y)
    # Scores that separate the classes perfectly only above 0.8: the tuned threshold must sit there, not at 0.5.
    rng = np.random.default_rng(0)
    p = np.where(target.numpy() == 1, rng.uniform(0.8, 0.9, 100), rng.uniform(0.0, 0.79, 100))
    raw = np.log(p / (1 - p))[:, None]
    out.calibrate(raw, y)
    assert 0.79 <= out.state["threshold"] <= 0.9
    metrics = out.metrics(y, raw)
    assert metrics["f1"] == 1.0 and metrics["roc_auc"] == 1.0
    decoded = out.decode(raw)
    assert list(decoded.columns) == ["diagnosis", "diagnosis_proba_benign", "diagnosis_proba_malignant"]
    assert (decoded["diagnosis"] == y).all()


def test_binary_output_recall_target():
    out = make(OUTPUT_TYPES, "binary", "y", threshold_metric="recall", threshold_target=0.9)
    y = pd.Series([0] * 50 + [1] * 50)
    out.fit(y)
    rng = np.random.default_rng(1)
    raw = (rng.normal(size=100) + 1.5 * y.to_numpy())[:, None]
    out.calibrate(raw, y)
    assert out.metrics(y, raw)["recall"] >= 0.9


def test_binary_output_rejects_single_class_and_three_classes():
    with pytest.raises(LaminaError, match="only the class"):
        make(OUTPUT_TYPES, "binary", "y").fit(pd.Series(["a", "a"]))
    with pytest.raises(LaminaError, match="declare it as a category"):
        make(OUTPUT_TYPES, "binary", "y").fit(pd.Series(["a", "b", "c"]))


def test_category_output_on_iris_metrics_and_decode():
    iris = load_iris(as_frame=True).frame
    y = iris["target"]
    out = make(OUTPUT_TYPES, "category", "species", class_weights="balanced")
    out.fit(y)
    assert out.state["classes"] == ["0", "1", "2"]
    perfect = np.eye(3)[y.to_numpy()] * 10
    metrics = out.metrics(y, perfect)
    assert metrics["accuracy"] == 1.0 and metrics["macro_f1"] == 1.0 and metrics["roc_auc"] == 1.0
    assert metrics["confusion_matrix"]["matrix"][0] == [50, 0, 0]
    decoded = out.decode(perfect)
    assert decoded.filter(like="_proba_").sum(axis=1).round(6).eq(1).all()
    loss = out.loss()
    assert float(loss(torch.tensor(perfect, dtype=torch.float32), out.transform(y))) < 1e-3


def test_category_output_unseen_target_class_names_row():
    out = make(OUTPUT_TYPES, "category", "species")
    out.fit(pd.Series(["a", "b", "c"]))
    with pytest.raises(LaminaError, match=r"row 2: class 'zebra' was not in the training data"):
        out.transform(pd.Series(["a", "zebra"]))


def test_focal_loss_is_smaller_than_cross_entropy_on_easy_examples():
    ce = make(OUTPUT_TYPES, "category", "y")
    focal = make(OUTPUT_TYPES, "category", "y", loss="focal")
    for o in (ce, focal):
        o.fit(pd.Series(["a", "b"]))
    logits = torch.tensor([[3.0, -3.0], [-3.0, 3.0]])
    target = torch.tensor([0, 1])
    assert float(focal.loss()(logits, target)) < float(ce.loss()(logits, target))


def test_number_output_standardises_and_decodes_back():
    out = make(OUTPUT_TYPES, "number", "price")
    y = pd.Series([10.0, 20.0, 30.0, 40.0])
    out.fit(y)
    target = out.transform(y)
    assert abs(float(target.mean())) < 1e-6
    decoded = out.decode(target.numpy()[:, None])
    assert np.allclose(decoded["price"], y)
    assert out.metrics(y, target.numpy()[:, None])["r2"] == pytest.approx(1.0)
