"""How well embeddings tell people apart: verification (genuine vs impostor pairs: ROC, EER, TAR at a FAR), closed-set
identification (rank-k against templates enrolled from each person's first clips) and open-set identification (DIR
at a FAR: a query whose person is not enrolled must score below the threshold).

Every function takes L2-normalised embeddings, so a score is a cosine similarity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PAIR_ROWS = 4000  # rows whose all pairs are scored (8 million pairs); a larger split is subsampled, seeded
FARS = (1e-2, 1e-3)


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def pair_scores(emb: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of every genuine (same person) and every impostor pair of rows (each unordered pair once)."""
    if len(emb) > PAIR_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(emb), PAIR_ROWS, replace=False))
        emb, labels = emb[keep], labels[keep]
    scores = emb @ emb.T
    upper = np.triu_indices(len(emb), k=1)
    same = (labels[:, None] == labels[None, :])[upper]
    values = scores[upper]
    return values[same], values[~same]


def threshold_at_far(impostor: np.ndarray, far: float) -> float:
    """The lowest threshold at which at most ``far`` of the impostor scores are accepted (score ≥ threshold)."""
    if len(impostor) == 0:
        return 1.0
    ordered = np.sort(impostor)[::-1]
    allowed = int(np.floor(far * len(ordered)))  # impostors that may score at or above the threshold
    if allowed >= len(ordered):
        return float(ordered[-1])
    # Halfway above the first impostor that must be rejected (and never above 1 + a hair): no score on the boundary.
    above = ordered[allowed - 1] if allowed > 0 else min(ordered[0] + 1e-3, 1.0 + 1e-6)
    return float((ordered[allowed] + above) / 2)


def verification(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
    """EER, TAR at each of ``FARS``, ROC AUC of the pairs' scores."""
    from sklearn.metrics import roc_auc_score, roc_curve

    if len(genuine) == 0 or len(impostor) == 0:
        return {}
    y = np.r_[np.ones(len(genuine)), np.zeros(len(impostor))]
    s = np.r_[genuine, impostor]
    fpr, tpr, _ = roc_curve(y, s)
    fnr = 1 - tpr
    i = int(np.argmin(np.abs(fnr - fpr)))
    result = {"eer": float((fpr[i] + fnr[i]) / 2), "roc_auc": float(roc_auc_score(y, s))}
    for far in FARS:
        t = threshold_at_far(impostor, far)
        result[f"tar_at_far_{far:.0e}".replace("e-0", "e-")] = float(np.mean(genuine >= t))
    result["genuine_pairs"], result["impostor_pairs"] = int(len(genuine)), int(len(impostor))
    return result


def enrol_split(labels: np.ndarray, enrol: int) -> tuple[np.ndarray, np.ndarray]:
    """Per person, the first ``enrol`` rows (at most all but one) make the template; the rest are queries."""
    template_rows = np.zeros(len(labels), dtype=bool)
    for person in np.unique(labels):
        rows = np.flatnonzero(labels == person)
        template_rows[rows[:min(enrol, len(rows) - 1)]] = True
    return template_rows, ~template_rows


def templates(emb: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One L2-normalised mean embedding per person: (people, names)."""
    people = np.unique(labels)
    return normalise(np.stack([emb[labels == p].mean(0) for p in people])), people


def identification(emb: np.ndarray, labels: np.ndarray, enrol: int, threshold: float | None) -> dict[str, float]:
    """Rank-1/rank-5 against every person's template; open-set DIR at FAR 1e-2, where the non-mated searches are
    the same queries with their own person's template left out of the gallery; and, at ``threshold``, the share of
    non-mated searches answered "unknown" and of mated ones identified."""
    in_template, query = enrol_split(labels, enrol)
    enrolled = np.unique(labels[in_template])
    if len(enrolled) < 2 or not query.any():
        return {}
    gallery, people = templates(emb[in_template], labels[in_template])
    scores = normalise(emb[query]) @ gallery.T
    truth = np.searchsorted(people, labels[query])
    mated = np.isin(labels[query], people)
    scores, truth = scores[mated], truth[mated]
    own = scores[np.arange(len(truth)), truth]
    rank = (scores > own[:, None]).sum(1)
    others = scores.copy()
    others[np.arange(len(truth)), truth] = -np.inf
    best_other = others.max(1)  # the non-mated search: this query with its person not enrolled
    result = {"rank1": float(np.mean(rank < 1)), "rank5": float(np.mean(rank < 5)), "queries": int(len(truth)),
              "enrolled": int(len(people))}
    t = threshold_at_far(best_other, 1e-2)
    result["dir_at_far_1e-2"] = float(np.mean((rank < 1) & (own >= t)))
    if threshold is not None:
        result["unknown_rate_at_threshold"] = float(np.mean(best_other < threshold))
        result["dir_at_threshold"] = float(np.mean((rank < 1) & (own >= threshold)))
    return result


def identity_metrics(emb: np.ndarray, labels: np.ndarray, enrol: int, threshold: float | None) -> dict[str, Any]:
    """Every metric of one split's embeddings; at the calibrated ``threshold`` also the pairs' FAR and TAR."""
    emb, labels = normalise(emb), np.asarray(labels).astype(str)
    genuine, impostor = pair_scores(emb, labels)
    result: dict[str, Any] = {"identities": int(len(np.unique(labels))), **verification(genuine, impostor)}
    if threshold is not None and len(genuine) and len(impostor):
        result["far_at_threshold"] = float(np.mean(impostor >= threshold))
        result["tar_at_threshold"] = float(np.mean(genuine >= threshold))
    result.update(identification(emb, labels, enrol, threshold))
    return result
