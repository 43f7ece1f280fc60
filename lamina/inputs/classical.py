"""What an input type gives ``lamina compare``: its classical features and the family of classical models that
reads them. A type returns a ``Featurizer`` from ``InputType.classical()``; the default one is stateless and asks the
type's ``classical_features``. A featurizer that learns something (TF-IDF's vocabulary) keeps it on itself -- never
on the deep model's type -- and is fitted on the training split before any other split is featurized.

Families: ``TABLE`` (LightGBM stopped early on validation, and a linear model), and the ones the image and text types
bring (``lamina.inputs.image_classical``, ``lamina.inputs.text_classical``). With several inputs, the family of the
highest ``rank`` models all of them (an image outweighs the table columns beside it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd


@dataclass
class Features:
    tree: dict[str, Any]  # column name → 1-D array or pandas Categorical (LightGBM)
    linear: list[Any] = field(default_factory=list)  # 2-D numeric blocks without NaN (numpy, or scipy sparse)


def _plain_fit(model: Any, x: Any, y: np.ndarray, validation: tuple[Any, np.ndarray] | None) -> None:
    model.fit(x, y)


@dataclass(frozen=True)
class Model:
    """One classical model: how to make it, and how to fit it (given the validation split, when there is one)."""

    make: Callable[[], Any]
    tree: bool = False  # takes the LightGBM frame (``Features.tree``) instead of the linear matrix
    fit: Callable[[Any, Any, np.ndarray, tuple[Any, np.ndarray] | None], None] = _plain_fit
    # settings for a rare positive class (the output type says when: ``OutputType.classical_rare``)
    rare: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class Family:
    """A family of classical models: ``models(classes, seed, folds)`` → model name → ``Model``."""

    name: str
    rank: int
    models: Callable[[bool, int, int], dict[str, Model]]
    requires: tuple[str, ...] = ()  # modules the models import (checked before the deep model trains)


def _lightgbm_fit(model: Any, x: Any, y: np.ndarray, validation: tuple[Any, np.ndarray] | None) -> None:
    import lightgbm as lgb

    if validation is None:
        model.fit(x, y)
        return
    model.fit(x, y, eval_X=(validation[0],), eval_y=(validation[1],), callbacks=[lgb.early_stopping(50, verbose=False)])


def _table_models(classes: bool, seed: int, folds: int) -> dict[str, Model]:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def lightgbm() -> Any:
        import lightgbm as lgb

        estimator = lgb.LGBMClassifier if classes else lgb.LGBMRegressor
        return estimator(n_estimators=1000, random_state=seed, n_jobs=1, verbose=-1)

    def linear() -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000) if classes else Ridge())

    return {"lightgbm": Model(lightgbm, tree=True, fit=_lightgbm_fit, rare=_rare_lightgbm),
            "logistic" if classes else "ridge": Model(linear, rare=_rare_linear if classes else None)}


def _rare_lightgbm(model: Any) -> None:
    """At 0.2 % positives a leaf of a few rows has a hessian sum under LightGBM's 1e-3 floor, its value explodes and
    the validation loss is best after one tree (test PR-AUC 0.71 on the ULB transactions, time split); a hessian floor
    of 5 and a smaller step train 250 trees to 0.77 (benchmarks/threats.py)."""
    model.set_params(min_child_weight=5.0, learning_rate=0.05)


def _rare_linear(model: Any) -> None:
    model.set_params(logisticregression__class_weight="balanced")


TABLE = Family("table", 0, _table_models, requires=("lightgbm",))


class Featurizer:
    """Classical features of one input column (stateless: asks the type's ``classical_features``)."""

    family: Family = TABLE

    def __init__(self, column: Any) -> None:
        self.column = column

    def fit(self, values: pd.Series) -> None:
        """Learn what the features need from the training split (nothing here)."""

    def features(self, values: pd.Series) -> Features:
        return self.column.classical_features(values)


def flattened(name: str, x: np.ndarray) -> Features:
    """A transformed tensor's values as they are: one feature per value, missing and infinite values as 0."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float64).reshape(len(x), -1), nan=0.0, posinf=0.0, neginf=0.0)
    names = [name] if x.shape[1] == 1 else [f"{name}_{i}" for i in range(x.shape[1])]
    return Features(dict(zip(names, x.T)), [x])
