"""The scikit-learn estimators on sklearn's own data sets: accuracy, labels, CV, pipelines, clone, seeds, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import KFold, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import lamina
from lamina.sklearn import LaminaClassifier, LaminaRegressor

FAST = {"epochs": 30, "patience": 5}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Networks this small train 5-10x faster on one thread than on two busy cores (threads wait on each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def cancer_model(cancer) -> LaminaClassifier:
    X_train, _, y_train, _ = cancer
    return LaminaClassifier(**FAST).fit(X_train, y_train)


def test_binary_classifier_on_held_out_rows(cancer, cancer_model):
    X_train, X_test, _, y_test = cancer
    assert cancer_model.score(X_test, y_test) >= 0.93
    np.testing.assert_array_equal(cancer_model.classes_, [0, 1])
    assert cancer_model.n_features_in_ == 30
    assert list(cancer_model.feature_names_in_) == list(X_train.columns)
    assert 1 <= len(cancer_model.history_) <= FAST["epochs"] and "val_loss" in cancer_model.history_[0]
    proba = cancer_model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_array_equal(cancer_model.predict(X_test), cancer_model.classes_[proba.argmax(axis=1)])


def test_same_random_state_gives_the_same_model(cancer, cancer_model):
    X_train, X_test, y_train, _ = cancer
    again = LaminaClassifier(**FAST).fit(X_train, y_train)
    np.testing.assert_array_equal(again.predict_proba(X_test), cancer_model.predict_proba(X_test))
    other = LaminaClassifier(**FAST, random_state=1).fit(X_train, y_train)
    assert not np.allclose(other.predict_proba(X_test), cancer_model.predict_proba(X_test))


def test_save_then_lamina_load_gives_the_same_probabilities(cancer, cancer_model, tmp_path):
    _, X_test, _, _ = cancer
    path = cancer_model.save(tmp_path / "cancer")
    out = lamina.load(path).predict(X_test)
    proba = out[[f"target_proba_{c}" for c in cancer_model.classes_]].to_numpy()
    np.testing.assert_array_equal(proba, cancer_model.predict_proba(X_test))
    np.testing.assert_array_equal(out["target"].astype(int), cancer_model.predict(X_test))


IRIS_LABELS = {
    "ints": [0, 1, 2],
    "names": ["setosa", "versicolor", "virginica"],
    "digit strings": ["9", "10", "100"],  # sorted as text (np.unique) and as numbers (Lamina) differently
}


@pytest.mark.parametrize("kind", IRIS_LABELS)
def test_multiclass_labels_come_back_as_given(kind):
    X, codes = load_iris(return_X_y=True)
    y = np.asarray(IRIS_LABELS[kind])[codes]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    clf = LaminaClassifier(**FAST).fit(X_train, y_train)
    np.testing.assert_array_equal(clf.classes_, np.unique(y))
    assert clf.classes_.dtype == y.dtype
    predicted = clf.predict(X_test)
    assert predicted.dtype == y.dtype and set(predicted) <= set(clf.classes_)
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    # Columns in classes_ order: the most likely column names the right class, so accuracy is high.
    assert np.mean(clf.classes_[proba.argmax(axis=1)] == y_test) >= 0.9


def test_regressor_cross_validated_r2():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    scores = cross_val_score(LaminaRegressor(**FAST), X, y, cv=KFold(5, shuffle=True, random_state=0))
    assert scores.mean() >= 0.35 and scores.min() > 0


def test_regressor_without_validation_trains_every_epoch():
    X, y = load_diabetes(return_X_y=True)
    reg = LaminaRegressor(epochs=5, validation_fraction=0).fit(X, y)
    assert len(reg.history_) == 5 and "val_loss" not in reg.history_[0]
    predicted = reg.predict(X[:10])
    assert predicted.shape == (10,) and predicted.dtype == np.float64 and np.isfinite(predicted).all()


def test_cross_val_score_on_a_classifier():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    scores = cross_val_score(LaminaClassifier(**FAST), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() >= 0.9


def test_pipeline_with_a_scaler_on_a_numpy_array(cancer):
    X_train, X_test, y_train, y_test = (np.asarray(part) for part in cancer)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LaminaClassifier(**FAST))]).fit(X_train, y_train)
    assert pipe.score(X_test, y_test) >= 0.93
    step = pipe.named_steps["clf"]
    assert step.n_features_in_ == 30 and not hasattr(step, "feature_names_in_")
    assert [s.name for s in step.model_.config.inputs] == [f"x{i}" for i in range(30)]
    with pytest.raises(ValueError, match="features"):
        step.predict(X_test[:, :29])


def test_clone_and_get_params_round_trip(cancer_model):
    clf = LaminaClassifier(epochs=7, hidden_width=32, class_weights={1: 2.0}, random_state=3)
    params = clf.get_params()
    assert params == {
        "hidden_depth": 2, "hidden_width": 32, "dropout": 0.1, "norm": "layer", "epochs": 7, "batch_size": 64,
        "learning_rate": 1e-3, "weight_decay": 1e-4, "patience": 10, "validation_fraction": 0.15,
        "class_weights": {1: 2.0}, "random_state": 3, "verbose": False,
    }
    assert clone(clf).get_params() == params
    assert LaminaClassifier(**params).get_params() == params
    assert clone(clf).set_params(epochs=9).epochs == 9 and clf.epochs == 7
    fresh = clone(cancer_model)
    assert fresh.get_params() == cancer_model.get_params() and not hasattr(fresh, "model_")
    reg = LaminaRegressor(loss="huber")
    assert "class_weights" not in reg.get_params() and clone(reg).get_params()["loss"] == "huber"


def test_data_frame_columns_get_inferred_types():
    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame({
        "color": rng.choice(["red", "green", "blue"], n),
        "x": rng.normal(size=n),
        "id": [f"row-{i}" for i in range(n)],  # all different: left out
        "constant": 1.0,  # left out
        "target": rng.normal(size=n),  # a feature with the output's usual name
    })
    y = np.where((X["color"] == "red") | (X["x"] > 1), "yes", "no")
    clf = LaminaClassifier(**FAST).fit(X, y)
    inputs = {s.name: s.type for s in clf.model_.config.inputs}
    assert inputs == {"color": "category", "x": "number", "target": "number"}
    assert [s.name for s in clf.model_.config.outputs] == ["target_"]
    assert clf.score(X, y) >= 0.9
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(X.drop(columns="id"))  # even a column the model leaves out


def test_errors_are_value_errors():
    with pytest.raises(NotFittedError):
        LaminaClassifier().predict(np.zeros((2, 3)))
    useless = pd.DataFrame({"constant": [1.0] * 10, "missing": [np.nan] * 10})
    with pytest.raises(ValueError, match="no usable column"):
        LaminaClassifier().fit(useless, [0, 1] * 5)
    with pytest.raises(ValueError, match="one class"):
        LaminaClassifier().fit(np.arange(20.0).reshape(10, 2), ["a"] * 10)
    with pytest.raises(ValueError, match="hidden.depth"):
        LaminaRegressor(hidden_depth=-1).fit(np.arange(20.0).reshape(10, 2), np.arange(10.0))
    with pytest.raises(ValueError, match="validation_fraction"):
        LaminaRegressor(validation_fraction=1.0).fit(np.arange(20.0).reshape(10, 2), np.arange(10.0))
