"""scikit-learn estimators: a Lamina network behind ``fit`` / ``predict``, for pipelines, grid search and CV.

The estimator builds the config in memory (one input per usable column of ``X``, one output ``target``), holds out
``validation_fraction`` of the rows for early stopping, and trains with ``lamina.training.fit``.

>>> import lamina
>>> from sklearn.datasets import load_breast_cancer
>>> from lamina.sklearn import LaminaClassifier
>>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
>>> clf = LaminaClassifier(epochs=30).fit(X, y)           # doctest: +SKIP
>>> clf.predict_proba(X.head(2)).shape                    # doctest: +SKIP
(2, 2)
>>> path = clf.save("models/cancer")                      # doctest: +SKIP
>>> lamina.load(path).predict(X.head(2))                  # the same model, without scikit-learn  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_consistent_length, check_is_fitted, column_or_1d, validate_data

from lamina import store, training
from lamina.config import Config, describe
from lamina.data.split import split_frame
from lamina.infer import infer_input
from lamina.inputs.binary import label

log = logging.getLogger("lamina")


class _LaminaEstimator(BaseEstimator):
    """What the classifier and the regressor share: turning ``X`` into a frame, the config, the split and training."""

    def _frame(self, X: Any, reset: bool) -> pd.DataFrame:
        """``X`` as a frame with str column names and a fresh index, checked (``reset``: recorded) as sklearn does."""
        if isinstance(X, pd.DataFrame):
            if 0 in X.shape:
                raise ValueError(f"X has shape {X.shape}; it needs at least one row and one column")
            validate_data(self, X, skip_check_array=True, reset=reset)  # n_features_in_, feature_names_in_
            frame = X
        else:  # an array is all numbers, unless it brings values for a model fitted on a DataFrame
            numeric = reset or not self._from_frame
            array = validate_data(self, X, reset=reset, dtype="numeric" if numeric else None,
                                  ensure_all_finite="allow-nan")
            frame = pd.DataFrame(array)
        if reset:
            if len(frame) < 2:
                raise ValueError(f"n_samples = {len(frame)}: fitting needs at least 2 samples")
            self._from_frame = isinstance(X, pd.DataFrame)
            self._columns = [str(c) if self._from_frame else f"x{c}" for c in frame.columns]
            if len(set(self._columns)) < len(self._columns):
                raise ValueError("X has duplicate column names")
        return frame.set_axis(self._columns, axis=1).reset_index(drop=True)

    def _inputs(self, frame: pd.DataFrame) -> list[dict[str, str]]:
        if not self._from_frame:
            return [{"name": c, "type": "number"} for c in frame.columns]
        inputs, skipped = [], []
        for column in frame.columns:
            kind, why = infer_input(column, frame[column])
            if kind:
                inputs.append({"name": column, "type": kind})
            else:
                skipped.append(f"{column!r} ({why})")
        if skipped:
            log.info("left out column(s) %s", ", ".join(skipped))
        if not inputs:
            raise ValueError(f"no usable column in X: left out {', '.join(skipped[:10])}")
        return inputs

    def _seed(self) -> int:
        if isinstance(self.random_state, (int, np.integer)) and not isinstance(self.random_state, bool):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    def _fit(self, frame: pd.DataFrame, y: np.ndarray, output: dict[str, Any], stratify: bool) -> None:
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        inputs = self._inputs(frame)
        target = "target"
        while target in frame.columns:  # a feature called 'target' keeps its name; the output moves aside
            target += "_"
        seed = self._seed()
        try:
            config = Config.model_validate({
                "name": type(self).__name__,
                "inputs": inputs,
                "outputs": [{"name": target, **output}],
                "hidden": {"depth": self.hidden_depth, "width": self.hidden_width, "dropout": self.dropout,
                           "norm": self.norm},
                "trainer": {"epochs": self.epochs, "batch_size": self.batch_size, "learning_rate": self.learning_rate,
                            "weight_decay": self.weight_decay, "seed": seed,
                            "early_stopping": {"patience": self.patience}},
            })
        except ValidationError as e:
            raise ValueError(f"invalid hyper-parameter: {describe(e)}") from None
        frame = frame.copy()
        frame[target] = y
        if self.validation_fraction > 0:
            parts = split_frame(frame, "stratified" if stratify else "random",
                                (1 - self.validation_fraction, self.validation_fraction, 0.0), seed, stratify_on=target)
            train, valid = parts["train"], parts["validation"]
            if stratify:  # a class too rare to stratify must still reach training, or the model cannot predict it
                unseen = ~valid[target].isin(train[target].unique())
                train, valid = pd.concat([train, valid[unseen]]).sort_index(), valid[~unseen]
            frames = {"train": train, "validation": valid}
        else:
            frames = {"train": frame}
        fitted = training.fit(config, frames, workdir=None, verbose=self.verbose)
        self.model_ = fitted.predictor
        self.history_ = fitted.history

    def _predict_frame(self, X: Any) -> tuple[pd.DataFrame, str]:
        check_is_fitted(self)
        out = self.model_.predict(self._frame(X, reset=False))
        return out, self.model_.preprocessor.outputs[0].name

    def save(self, path: str | os.PathLike) -> Path:
        """Save the fitted model as a Lamina model directory; ``lamina.load(path)`` reads it back."""
        check_is_fitted(self)
        return store.save(self.model_, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a missing number is filled with the mean and flagged
        return tags


class LaminaClassifier(ClassifierMixin, _LaminaEstimator):
    """A Lamina network as a scikit-learn classifier.

    ``X`` is a DataFrame (each column's type is inferred as ``lamina init`` does; unusable columns are left out) or a
    numeric array (every column a number). ``classes_`` holds the labels of ``y`` as given, sorted.

    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LaminaClassifier(epochs=30, patience=5).fit(X, y)   # doctest: +SKIP
    >>> clf.classes_                                               # doctest: +SKIP
    array([0, 1, 2])
    >>> clf.predict_proba(X[:5]).shape                             # doctest: +SKIP
    (5, 3)
    """

    def __init__(self, hidden_depth: int = 2, hidden_width: int = 128, dropout: float = 0.1, norm: str = "layer",
                 epochs: int = 100, batch_size: int = 64, learning_rate: float = 1e-3, weight_decay: float = 1e-4,
                 patience: int = 10, validation_fraction: float = 0.15, class_weights: str | dict = "none",
                 random_state: int | None = 0, verbose: bool = False) -> None:
        self.hidden_depth = hidden_depth
        self.hidden_width = hidden_width
        self.dropout = dropout
        self.norm = norm
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.class_weights = class_weights
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: Any, y: Any) -> LaminaClassifier:
        frame = self._frame(X, reset=True)
        y = column_or_1d(y, warn=True)
        check_consistent_length(frame, y)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"y has one class only ({classes[0]!r}); a classifier needs at least two")
        labels = [label(c) for c in classes]
        if len(set(labels)) < len(labels):
            raise ValueError(f"y has classes that read as the same label ({', '.join(map(repr, labels))}); "
                             "make them distinct")
        weights = self.class_weights
        if isinstance(weights, dict):
            weights = {label(k): float(v) for k, v in weights.items()}
        self._fit(frame, y, {"type": "category", "options": {"class_weights": weights}}, stratify=True)
        self.classes_ = classes
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per class in ``classes_`` order."""
        out, name = self._predict_frame(X)
        return out[[f"{name}_proba_{label(c)}" for c in self.classes_]].to_numpy(dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)  # first: it checks that the model is fitted
        return self.classes_[proba.argmax(axis=1)]


class LaminaRegressor(RegressorMixin, _LaminaEstimator):
    """A Lamina network as a scikit-learn regressor (the target is standardised for training; ``loss`` is
    ``"mse"`` or ``"huber"``).

    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> reg = LaminaRegressor(epochs=30).fit(X, y)   # doctest: +SKIP
    >>> reg.predict(X.head(3)).shape                 # doctest: +SKIP
    (3,)
    """

    def __init__(self, hidden_depth: int = 2, hidden_width: int = 128, dropout: float = 0.1, norm: str = "layer",
                 epochs: int = 100, batch_size: int = 64, learning_rate: float = 1e-3, weight_decay: float = 1e-4,
                 patience: int = 10, validation_fraction: float = 0.15, loss: str = "mse",
                 random_state: int | None = 0, verbose: bool = False) -> None:
        self.hidden_depth = hidden_depth
        self.hidden_width = hidden_width
        self.dropout = dropout
        self.norm = norm
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.loss = loss
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: Any, y: Any) -> LaminaRegressor:
        frame = self._frame(X, reset=True)
        y = check_array(column_or_1d(y, warn=True), ensure_2d=False, dtype=np.float64, input_name="y")
        check_consistent_length(frame, y)
        self._fit(frame, y, {"type": "number", "options": {"loss": self.loss}}, stratify=False)
        return self

    def predict(self, X: Any) -> np.ndarray:
        out, name = self._predict_frame(X)
        return out[name].to_numpy(dtype=np.float64)
