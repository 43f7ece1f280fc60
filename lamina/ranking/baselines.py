"""The classical models every recommendation run is compared with: most-popular and EASE.

EASE (Steck, 2019): item–item weights ``B = I − P·diag(1/diag(P))`` with ``P = (XᵀX + λI)⁻¹``, a closed form on the
user–item matrix ``X``; a user's scores are ``x_u B``. Dense in the number of items: fine to ~30k items.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


class Popularity:
    name = "most-popular"

    def fit(self, x: sp.csr_matrix) -> Popularity:
        self.counts = torch.from_numpy(np.asarray(x.sum(axis=0)).ravel().astype(np.float32))
        return self

    def score(self, users: np.ndarray) -> torch.Tensor:
        return self.counts.expand(len(users), -1)


class EASE:
    name = "EASE"

    def __init__(self, lam: float = 500.0) -> None:
        self.lam = lam

    def fit(self, x: sp.csr_matrix) -> EASE:
        self.x = x.astype(np.float32).tocsr()
        used = np.flatnonzero(np.asarray(x.sum(axis=0)).ravel() > 0)  # items no one has: weight 0, leave them out
        sub = self.x[:, used]
        dtype = torch.float64 if len(used) <= 4000 else torch.float32
        gram = torch.from_numpy((sub.T @ sub).toarray()).to(dtype)
        gram.diagonal().add_(self.lam)
        p = torch.linalg.inv(gram)
        b = -p / p.diagonal()
        b.diagonal().zero_()
        self.used = torch.from_numpy(used)
        self.b = b.float()
        self.sub = sub
        return self

    def score(self, users: np.ndarray) -> torch.Tensor:
        rows = torch.from_numpy(self.sub[users].toarray())
        out = torch.zeros(len(users), self.x.shape[1])
        out[:, self.used] = rows @ self.b
        return out
