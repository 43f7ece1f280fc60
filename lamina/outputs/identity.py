"""Identity targets: who is it. An L2-normalised embedding head trained with an additive-margin softmax (CosFace
or ArcFace) over the people of the training split; the people of validation and test are others (the split is by
identity), so the metrics are on people never seen in training, and new people are enrolled after training
(``lamina enroll``).

The head's raw output is ``[embedding (embedding_dim), cosine to each training person's centre]``: the centres are
the head's weights, so the one optimizer trains them and the model's safetensors keep them. The verification
threshold is calibrated on the validation people for ``target_far`` and kept in the state (JSON).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F

from lamina.errors import LaminaError
from lamina.inputs.binary import label
from lamina.outputs.base import OutputOptions, OutputType
from lamina.outputs.identity_metrics import identity_metrics, normalise, pair_scores, threshold_at_far

IGNORE = -100  # a row of a person not in training: no class to pull towards (validation, test, new people)


class IdentityOptions(OutputOptions):
    embedding_dim: int = Field(128, ge=2, le=4096, description="width of the L2-normalised embedding")
    margin_loss: Literal["cosface", "arcface"] = "cosface"
    margin: float = Field(0.35, ge=0, le=1, description="additive margin (cosine for cosface, angle for arcface)")
    scale: float = Field(30.0, gt=0, description="the softmax's inverse temperature on cosines")
    subcentres: int = Field(1, ge=1, le=16, description="centres per training person (sub-centre ArcFace/CosFace): "
                                                         "a person's cosine is to the nearest of them")
    target_far: float = Field(1e-3, gt=0, lt=1, description="false-accept rate the verification threshold is set for")
    enrol: int = Field(3, ge=1, description="clips per person averaged into a template in the identification metrics")


class IdentityState(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    identities: list[str] = Field(min_length=2)
    threshold: float | None = None


class IdentityHead(nn.Module):
    """Hidden features → (embedding, cosine to each person's centre), concatenated; with sub-centres a person's
    ``subcentres`` consecutive rows of ``centres`` are theirs and the nearest one counts."""

    def __init__(self, in_dim: int, dim: int, people: int, subcentres: int = 1) -> None:
        super().__init__()
        self.project = nn.Linear(in_dim, dim)
        self.norm = nn.BatchNorm1d(dim)
        self.subcentres = subcentres
        self.centres = nn.Parameter(torch.randn(people * subcentres, dim) / math.sqrt(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        emb = F.normalize(self.norm(self.project(x)), dim=1)
        cos = emb @ F.normalize(self.centres, dim=1).T
        if self.subcentres > 1:
            cos = cos.unflatten(1, (-1, self.subcentres)).amax(2)
        return torch.cat([emb, cos], dim=1)


class MarginLoss(nn.Module):
    """Softmax cross-entropy on scaled cosines with the target's penalised by a margin; rows of people not in
    training (``IGNORE``) add nothing."""

    def __init__(self, dim: int, kind: str, margin: float, scale: float) -> None:
        super().__init__()
        self.dim, self.kind, self.margin, self.scale = dim, kind, margin, scale

    def forward(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        known = target >= 0
        if not bool(known.any()):
            return raw.sum() * 0.0
        cos, target = raw[known, self.dim:].clamp(-1 + 1e-6, 1 - 1e-6), target[known]
        hot = F.one_hot(target, cos.shape[1]).bool()
        if self.kind == "arcface":
            # cos(θ + m), falling back to cos θ − m·sin m past θ = π − m, where θ + m would wrap round (ArcFace's easy fix)
            theta = torch.acos(cos)
            shifted = torch.where(theta + self.margin < math.pi, torch.cos(theta + self.margin),
                                  cos - self.margin * math.sin(self.margin))
        else:
            shifted = cos - self.margin
        return F.cross_entropy(self.scale * torch.where(hot, shifted, cos), target)


class IdentityOutput(OutputType):
    kind = "identity"
    Options = IdentityOptions
    state_schema = IdentityState
    primary_metric = "eer"
    higher_is_better = False
    metric_names = ("tar_at_far_1e-2", "tar_at_far_1e-3", "roc_auc", "rank1", "rank5", "dir_at_far_1e-2")
    lower_is_better = frozenset({"eer", "far_at_threshold"})
    split_by_value = True
    scores_held_out_loss = False
    embeds = True

    def fit(self, values: pd.Series) -> None:
        people = sorted(values.dropna().map(label).unique())
        if len(people) < 2:
            raise LaminaError(f"target '{self.name}': the training split has {len(people)} person(s); an identity "
                              "model needs at least two people in training (and others for validation and test)")
        self.state = {"identities": [str(p) for p in people], "threshold": None}

    def transform(self, values: pd.Series) -> torch.Tensor:
        lookup = {p: i for i, p in enumerate(self.state["identities"])}
        index = values.map(label, na_action="ignore").map(lookup)
        return torch.from_numpy(index.to_numpy(dtype=np.float64, na_value=IGNORE).astype(np.int64))

    @property
    def dim(self) -> int:
        return self.options.embedding_dim

    def head(self, in_dim: int) -> nn.Module:
        return IdentityHead(in_dim, self.dim, len(self.state["identities"]), self.options.subcentres)

    def loss(self) -> nn.Module:
        o = self.options
        return MarginLoss(self.dim, o.margin_loss, o.margin, o.scale)

    def held_out_loss(self, raw: np.ndarray, values: pd.Series) -> float | None:
        """The training loss with the held-out people's own centres: each row against the mean embedding of every
        held-out person, its own person's mean taken without it (a person with one row is left out). Lower when
        unseen people cluster apart, as the metrics want; not on the training loss's scale (other people, fewer)."""
        emb = self.embedding(raw)
        people, index = np.unique(values.map(label).to_numpy().astype(str), return_inverse=True)
        counts = np.bincount(index, minlength=len(people))
        rows = counts[index] >= 2
        if len(people) < 2 or not rows.any():
            return None
        sums = np.zeros((len(people), emb.shape[1]))
        np.add.at(sums, index, emb)
        cos = emb @ normalise(sums).T
        cos[np.arange(len(emb)), index] = (emb * normalise(sums[index] - emb)).sum(1)  # leave the row out
        raw_rows = torch.from_numpy(np.hstack([emb, cos])[rows]).float()
        with torch.no_grad():
            return float(self.loss()(raw_rows, torch.from_numpy(index[rows]).long()))

    def embedding(self, raw: np.ndarray) -> np.ndarray:
        """The L2-normalised embeddings in raw head outputs (an ensemble's average renormalised)."""
        return normalise(np.asarray(raw)[:, :self.dim])

    def calibrate(self, raw: np.ndarray, values: pd.Series) -> None:
        self.state["threshold"] = self.threshold_for(self.embedding(raw), values)

    def threshold_for(self, emb: np.ndarray, values: pd.Series) -> float | None:
        """The cosine at which ``target_far`` of the impostor pairs among ``values``' people are accepted."""
        genuine, impostor = pair_scores(normalise(emb), values.map(label).to_numpy().astype(str))
        if len(impostor) == 0:
            return None
        return threshold_at_far(impostor, self.options.target_far)

    def decode(self, raw: np.ndarray) -> pd.DataFrame:
        emb = self.embedding(raw).astype(np.float32)
        column = np.empty(len(emb), dtype=object)
        column[:] = [row.round(6).tolist() for row in emb]
        return pd.DataFrame({self.name: column})

    def metrics(self, values: pd.Series, raw: np.ndarray) -> dict[str, Any]:
        return self.embedding_metrics(values, self.embedding(raw), self.state.get("threshold"))

    def embedding_metrics(self, values: pd.Series, emb: np.ndarray, threshold: float | None) -> dict[str, Any]:
        labels = values.map(label).to_numpy().astype(str)
        return identity_metrics(emb, labels, self.options.enrol, threshold)

    # --- compare: the inputs' classical features scored by cosine, with the same protocol -------------------------

    def classical_counterparts(self, inputs: list[Any], split: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
        from lamina.outputs.identity_classical import classical_rows

        return classical_rows(self, inputs, split)

    # --- explain: the cosine to the nearest training person's centre ----------------------------------------------

    def explained_score(self, raw: torch.Tensor) -> torch.Tensor:
        return raw[:, self.dim:]

    def explained_score_name(self) -> str:
        return f"{self.name}: cosine to the nearest training person"

    def explained_class(self, raw: np.ndarray) -> np.ndarray | None:
        return np.asarray(raw)[:, self.dim:].argmax(1)

    def explained_label(self, index: int) -> str:
        return str(self.state["identities"][index])

    @property
    def readout_metric(self) -> str:
        return "accuracy"

    def report_section(self, inputs: list[Any], test: pd.DataFrame, raw: np.ndarray) -> str | None:
        from lamina.outputs.identity_report import identity_section

        return identity_section(self, test, raw)
