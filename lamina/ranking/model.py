"""A trained recommender in memory: ``recommend(users, k)`` and ``similar(item, k)``, saved as a model directory.

Serving is a matrix product: the stored user vectors times the stored item vectors, batched over users, the items a
user already interacted with masked, then ``torch.topk``. Every item's vector is computed once at training time and
stored in ``weights.safetensors``. For millions of items the exact product and topk below is where an approximate
nearest-neighbour index (FAISS / ScaNN / HNSW over ``item_embeddings``, inner product) would take over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from lamina.config import ColumnsConfig, Config, InputSpec, validate_config
from lamina.errors import LaminaError
from lamina.inputs.binary import label
from lamina.preprocessor import Preprocessor
from lamina.ranking.metrics import top_k
from lamina.ranking.towers import TwoTower

log = logging.getLogger("lamina")
SERVE_BATCH = 1024
COLD_POPULAR = "unknown user: most popular items"
COLD_FEATURES = "unknown user: scored from the user's features"


def tower_columns(config: Config) -> tuple[ColumnsConfig, ColumnsConfig]:
    """Each tower's columns: its ID as a category embedding, then its side columns, each with its own type."""
    rec = config.recommendation
    assert rec is not None

    def tower(name: str, features: list[InputSpec]) -> ColumnsConfig:
        key = InputSpec(name=name, type="category", options={"embedding_dim": rec.embedding_dim})
        return ColumnsConfig(inputs=[key, *features], hidden=config.hidden)

    return tower(rec.user, rec.user_features), tower(rec.item, rec.item_features)


def tower_preprocessors(config: Config, state: dict[str, Any] | None = None) -> tuple[Preprocessor, Preprocessor]:
    """One Preprocessor per tower, with the fitted ``state`` (``{"user": ..., "item": ...}``) when given."""
    user, item = tower_columns(config)
    state = state or {}
    return Preprocessor(user, state.get("user")), Preprocessor(item, state.get("item"))


def build_network(config: Config, user_prep: Preprocessor, item_prep: Preprocessor, n_items: int) -> TwoTower:
    rec = config.recommendation
    assert rec is not None
    return TwoTower(user_prep.inputs, item_prep.inputs, config.hidden, rec.embedding_dim, n_items, rec.history,
                    rec.recent)


class Recommender:
    task = "recommendation"
    reports = False  # no report.html yet

    def __init__(self, config: Config, user_prep: Preprocessor, item_prep: Preprocessor, network: TwoTower,
                 users: list[str], items: list[str], titles: list[str | None] | None, popularity: np.ndarray,
                 user_vectors: torch.Tensor, item_vectors: torch.Tensor, seen: sp.csr_matrix,
                 info: dict[str, Any] | None = None) -> None:
        self.config, self.user_prep, self.item_prep, self.network = config, user_prep, item_prep, network
        self.users, self.items, self.titles = list(users), list(items), titles
        self.user_index = {u: n for n, u in enumerate(self.users)}
        self.item_index = {i: n for n, i in enumerate(self.items)}
        self.popularity = np.asarray(popularity, dtype=np.int64)
        self.user_vectors, self.item_vectors, self.seen = user_vectors, item_vectors, seen.tocsr()
        self.info = info or {}

    @property
    def metrics(self) -> dict[str, Any]:
        return self.info.get("metrics", {})

    # --- serving -------------------------------------------------------------------------------------------------

    def _rows(self, user_labels: list[str], codes: np.ndarray, scores: torch.Tensor, exclude: sp.csr_matrix | None,
              rows_of: np.ndarray, k: int, note: str) -> list[dict[str, Any]]:
        index, values = top_k(scores, exclude, rows_of, k)
        out = []
        for r, user in enumerate(user_labels):
            for rank, (i, s) in enumerate(zip(index[r].tolist(), values[r].tolist()), 1):
                if not np.isfinite(s):
                    break
                row = {"user": user, "rank": rank, "item": self.items[i], "score": round(float(s), 6)}
                if self.titles is not None:
                    row["title"] = self.titles[i]
                row["note"] = note
                out.append(row)
        return out

    def recommend(self, users: Any, k: int = 10, features: pd.DataFrame | None = None) -> pd.DataFrame:
        """Top-k unseen items per user: columns user, rank, item, score (title), note.

        ``users``: one ID, a list of IDs, or a DataFrame whose user column holds them (and, for users unknown to the
        model, the user-feature columns, if the model has any). An unknown user is not an error: it gets the most
        popular items, or feature-based scores when the model has user features and the frame gives them.
        """
        if k < 1:
            raise LaminaError(f"k must be at least 1 (got {k})")
        column = self.config.recommendation.user
        if isinstance(users, pd.DataFrame):
            if column not in users.columns:
                raise LaminaError(f"the users table has no column {column!r} (the model's user column)")
            features, users = users, users[column].tolist()
        elif np.ndim(users) == 0:
            users = [users]
        wanted = [label(u) for u in users]
        codes = np.array([self.user_index.get(u, -1) for u in wanted])
        rows: list[dict[str, Any]] = []
        known = np.flatnonzero(codes >= 0)
        for s in range(0, len(known), SERVE_BATCH):
            part = known[s:s + SERVE_BATCH]
            scores = self.user_vectors[codes[part]] @ self.item_vectors.T
            rows += self._rows([wanted[p] for p in part], codes[part], scores, self.seen, codes[part], k, "")
        cold = np.flatnonzero(codes < 0)
        if len(cold):
            log.warning("%d user(s) not seen in training (e.g. %r): %s", len(cold), wanted[cold[0]],
                        "scored from their features" if self._can_use_features(features) else "most popular items")
            if self._can_use_features(features):
                frame = features.iloc[cold].reset_index(drop=True)
                batch = self.user_prep.inputs_to_tensors(frame, "users")
                with torch.inference_mode():
                    vectors = self.network.user_vectors(batch)
                scores, note = vectors @ self.item_vectors.T, COLD_FEATURES
            else:
                scores = torch.from_numpy(self.popularity.astype(np.float32)).expand(len(cold), -1)
                note = COLD_POPULAR
            rows += self._rows([wanted[c] for c in cold], codes[cold], scores, None, cold, k, note)
        frame = pd.DataFrame(rows, columns=["user", "rank", "item", "score", *(["title"] if self.titles else []), "note"])
        order = {u: n for n, u in enumerate(wanted)}
        return frame.sort_values(["user", "rank"], key=lambda c: c.map(order) if c.name == "user" else c,
                                 kind="stable").reset_index(drop=True)

    def _can_use_features(self, features: pd.DataFrame | None) -> bool:
        names = [s.name for s in self.config.recommendation.user_features]
        return bool(names) and features is not None and all(n in features.columns for n in names)

    def similar(self, item: Any, k: int = 10) -> pd.DataFrame:
        """The k items nearest to ``item`` in the learned item space (cosine), the item itself left out."""
        key = label(item)
        if key not in self.item_index:
            raise LaminaError(f"item {key!r} is not in the model's catalogue of {len(self.items)} items "
                              f"(e.g. {', '.join(repr(i) for i in self.items[:3])})")
        code = self.item_index[key]
        scores = (self.item_vectors[code] @ self.item_vectors.T).unsqueeze(0)
        scores[0, code] = -torch.inf
        index, values = top_k(scores, None, np.array([0]), k)
        rows = [{"rank": r, "item": self.items[i], "score": round(float(s), 6),
                 **({"title": self.titles[i]} if self.titles else {})}
                for r, (i, s) in enumerate(zip(index[0].tolist(), values[0].tolist()), 1)]
        return pd.DataFrame(rows)

    def title_of(self, item: Any) -> str | None:
        code = self.item_index.get(label(item))
        return self.titles[code] if self.titles is not None and code is not None else None

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        raise LaminaError("this is a recommendation model: use `lamina recommend` / `lamina similar` "
                          "(recommend(users, k) / similar(item, k) from Python)")

    evaluate = predict

    # --- the model directory (written and read by lamina.store) ------------------------------------------------

    def model_files(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """What ``lamina.json`` holds of this model, and its tensors."""
        info = {
            "config": self.config.model_dump(mode="json"),
            "preprocessor": {"user": self.user_prep.state(), "item": self.item_prep.state()},
            "users": self.users, "items": self.items, "titles": self.titles,
            "popularity": self.popularity.tolist(),
            **{k: v for k, v in self.info.items() if k != "run_dir"},
        }
        tensors = {f"model.{k}": v for k, v in self.network.state_dict().items()}
        tensors.update({
            "user_embeddings": self.user_vectors, "item_embeddings": self.item_vectors,
            "seen.indptr": torch.from_numpy(self.seen.indptr.astype(np.int64)),
            "seen.indices": torch.from_numpy(self.seen.indices.astype(np.int64)),
        })
        return info, tensors

    @classmethod
    def from_files(cls, source: str, info: dict[str, Any], tensors: dict[str, torch.Tensor],
                   check: Callable[..., None]) -> Recommender:
        """The model ``model_files`` wrote. ``check(weights, expected, consistent)`` refuses tensors that do not
        fit the network ``info`` describes; KeyError, TypeError or ValueError mean ``info`` is incomplete."""
        config = validate_config(info["config"], source=source)
        user_prep, item_prep = tower_preprocessors(config, info["preprocessor"])
        unfitted = [t.name for t in [*user_prep.inputs, *item_prep.inputs] if not t.state]
        if unfitted:
            raise LaminaError(f"{source}: no fitted state for column {unfitted[0]!r}; the file is incomplete, "
                              "retrain or restore the model directory")
        items, users = [str(i) for i in info["items"]], [str(u) for u in info["users"]]
        network = build_network(config, user_prep, item_prep, len(items))
        weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        needed = ("user_embeddings", "item_embeddings", "seen.indptr", "seen.indices")
        check(weights, network.state_dict(), all(n in tensors for n in needed)
              and tensors["item_embeddings"].shape[0] == len(items)
              and tensors["user_embeddings"].shape[0] == len(users))
        network.load_state_dict(weights)
        network.eval()
        indices, indptr = tensors["seen.indices"].numpy(), tensors["seen.indptr"].numpy()
        seen = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr),
                             shape=(len(users), len(items)))
        meta = {k: v for k, v in info.items()
                if k not in ("config", "preprocessor", "users", "items", "titles", "popularity")}
        return cls(config, user_prep, item_prep, network, users, items, info.get("titles"),
                   np.asarray(info["popularity"]), tensors["user_embeddings"], tensors["item_embeddings"], seen, meta)
