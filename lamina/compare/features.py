"""The classical features of a frame's inputs: each input type's own featurizer (``InputType.classical``), fitted on
the training split, and the family of models that reads them all (the highest ranked of the inputs' families)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lamina.inputs.classical import Family, Featurizer


def featurizers(inputs: list[Any], train: pd.DataFrame) -> list[Featurizer]:
    """One featurizer per input, fitted on the training rows (their state stays on them, not on the types)."""
    found = []
    for t in inputs:
        f = t.classical()
        f.fit(train[t.name])
        found.append(f)
    return found


def family(found: list[Featurizer]) -> Family:
    return max((f.family for f in found), key=lambda fam: fam.rank)


def features(found: list[Featurizer], frame: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    """(LightGBM frame, linear matrix) of a frame's inputs; the matrix is sparse when a block is (TF-IDF)."""
    from scipy.sparse import csr_matrix, hstack, issparse

    tree: dict[str, Any] = {}
    linear: list[Any] = []
    for f in found:
        got = f.features(frame[f.column.name])
        tree.update(got.tree)
        linear += got.linear
    table = pd.DataFrame(tree, index=frame.index)
    if any(issparse(b) for b in linear):
        return table, hstack([b if issparse(b) else csr_matrix(b) for b in linear]).tocsr()
    return table, np.concatenate(linear, axis=1) if linear else np.zeros((len(frame), 0))
