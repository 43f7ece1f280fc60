"""The text type's classical counterpart for ``lamina compare``: TF-IDF of word 1-2 grams and character 2-5 grams
(fitted on the training split, kept on the featurizer), read by a logistic regression (ridge for numbers)."""

from __future__ import annotations

from typing import Any, Callable

import pandas as pd

from lamina.inputs.classical import Family, Featurizer, Features, Model


def _tfidf(classes: bool, seed: int, folds: int) -> dict[str, Model]:
    from sklearn.linear_model import LogisticRegression, Ridge

    def linear() -> Any:  # sparse TF-IDF (values in [0, 1]): a linear model on it as it is, no scaling
        return LogisticRegression(C=10.0, max_iter=2000) if classes else Ridge()

    return {"tfidf+logistic" if classes else "tfidf+ridge": Model(linear)}


SPARSE = Family("tfidf", 1, _tfidf)


class TfidfFeaturizer(Featurizer):
    family = SPARSE

    def __init__(self, column: Any, as_text: Callable[[object], str]) -> None:
        super().__init__(column)
        self.as_text = as_text  # the text type's own reading of a cell
        self.vectorizers: list[Any] = []

    def fit(self, values: pd.Series) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        lowercase = bool(getattr(self.column.options, "lowercase", True))
        self.vectorizers = [
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=lowercase),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, lowercase=lowercase,
                            max_features=200_000)]
        texts = [self.as_text(v) for v in values]
        for v in self.vectorizers:
            v.fit(texts)

    def features(self, values: pd.Series) -> Features:
        from scipy.sparse import hstack

        texts = [self.as_text(v) for v in values]
        return Features({}, [hstack([v.transform(texts) for v in self.vectorizers]).tocsr()])
