"""The audio type's classical counterpart for ``lamina compare``: MFCCs (the DCT of the type's own cached log-mel)
summarised per clip -- mean and std of each coefficient and of its frame-to-frame delta, the classical
keyword-spotting features -- for LightGBM and the linear model."""

from __future__ import annotations

import numpy as np

from lamina.inputs.audio_encoder import dct_matrix
from lamina.inputs.classical import Features


def mfcc_statistics(name: str, logmel: np.ndarray) -> Features:
    logmel = logmel.astype(np.float32)
    mfcc = np.einsum("kb,nbt->nkt", dct_matrix(logmel.shape[1], min(20, logmel.shape[1])).numpy(), logmel)
    delta = np.diff(mfcc, axis=2)
    x = np.concatenate([mfcc.mean(2), mfcc.std(2), delta.mean(2), delta.std(2)], axis=1).astype(np.float64)
    k = mfcc.shape[1]
    names = [f"{name}_{stat}{i}" for stat in ("mfcc_mean", "mfcc_std", "delta_mean", "delta_std") for i in range(k)]
    return Features(dict(zip(names, x.T)), [x])
