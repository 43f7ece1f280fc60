"""Integrated Gradients (Captum) in *attribution space*: one float tensor per part of the network's input --

* ``dense``: the passthrough columns (numbers, binaries), each type's ``width`` columns summed back to one column,
  against the type's ``explain_baseline``;
* an encoder's *output* (categories, sets, series, audio, a frozen pretrained text encoder): gradients cannot flow
  through an index, so the encoded vector is attributed against the mean embedding and summed to the column;
* an encoder's *input* for ``pixels`` types (image): per-pixel saliency, summed over channels;
* the embeddings of ``tokens`` types (text): per token, against the [PAD] embedding.

Each input type says which (``InputType.attribution``); each output type says which score is explained
(``OutputType.explained_score``): by completeness the attributions of a row sum to score(row) − score(baseline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from typing import Any

import numpy as np
import torch
from torch import nn

from lamina.errors import LaminaError
from lamina.model import DENSE
from lamina.predictor import Predictor

STEPS = 64  # Integrated Gradients' integration steps (Gauss-Legendre): completeness holds to ~1e-3 at 64
INTERNAL_BATCH = 512  # rows × steps evaluated at once: bounds memory whatever the number of rows
COMPLETE, REFINE = 0.01, 8  # a completeness error worth refining, and how many times the steps to refine with
ROW_CHUNK = 256  # rows attributed per call
MAX_JSON_PIXELS = 64 * 64  # saliency maps up to this size go into explain_rows' JSON


def encoded_baseline(encoder: nn.Module) -> torch.Tensor:
    """The mean embedding of the known values (rows 0 and 1 are the reserved unknown/missing or padding rows)."""
    members = getattr(encoder, "members", None)
    if members is not None:  # an ensemble's encoder: its members' outputs side by side (lamina.ensemble)
        return torch.cat([encoded_baseline(e) for e in members])
    for module in encoder.modules():
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and module.weight.shape[0] > 2:
            return module.weight[2:].detach().mean(0)
    return torch.zeros(encoder.out_dim)


# --- the attribution space ------------------------------------------------------------------------------------------

@dataclass
class Part:
    key: str  # DENSE or an input name
    mode: str  # "dense" | "encoded" | "pixels"
    columns: list[str]
    slices: list[slice] = field(default_factory=list)  # dense: each column's slice of the dense tensor
    baseline: torch.Tensor | None = None  # one row (broadcast)


class Space:
    """The network seen as a function of attribution-space tensors."""

    def __init__(self, predictor: Predictor, output: str | None = None) -> None:
        self.predictor, self.net = predictor, predictor.network.eval()
        outputs = predictor.preprocessor.outputs
        names = [t.name for t in outputs]
        if output is not None and output not in names:
            raise LaminaError(f"output {output!r} not in the model; it has {', '.join(names)}")
        self.output = next(t for t in outputs if t.name == (output or names[0]))
        if self.output.sequence:
            raise LaminaError(f"output '{self.output.name}' is text (generated token by token): explanations cover "
                              "class and number outputs only; pick another output with --output")
        self.head = self.net.heads[names.index(self.output.name)]
        self.parts: list[Part] = []
        inputs = predictor.preprocessor.inputs
        dense = [t for t in inputs if t.passthrough]
        if dense:
            part, start = Part(DENSE, "dense", []), 0
            values: list[float] = []
            for t in dense:
                part.columns.append(t.name)
                part.slices.append(slice(start, start + t.width))
                values += list(t.explain_baseline())
                start += t.width
            part.baseline = torch.tensor(values, dtype=torch.float32)
            self.parts.append(part)
        types = {t.name: t for t in inputs}
        for name, encoder in zip(self.net.input_names, self.net.encoders):
            mode = types[name].attribution(encoder)  # the type says in which unit it is explained
            if mode == "pixels":
                self.parts.append(Part(name, "pixels", [name], baseline=torch.zeros(1)))  # black
            elif mode == "tokens":
                self.parts.append(Part(name, "tokens", [name]))  # every token at the [PAD] embedding (zeros)
            else:  # the encoder's output, against the mean embedding (or the zero vector when it has none)
                self.parts.append(Part(name, "encoded", [name], baseline=encoded_baseline(encoder)))
        self.encoders = dict(zip(self.net.input_names, self.net.encoders))
        source = getattr(self.net, "maps_from", None)
        self.maps_key = self.net.input_names[source] if source is not None and self.output.spatial else None
        self.columns = [c for p in self.parts for c in p.columns]

    def tensors(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        out = []
        with torch.no_grad():
            for p in self.parts:
                x = batch[p.key]
                if p.mode == "encoded":
                    x = self.encoders[p.key](x)
                elif p.mode == "tokens":  # (n, L, dim + 1): the embeddings, then the padding mask (never varied)
                    keep = (x != 0).unsqueeze(-1)
                    x = torch.cat([self.encoders[p.key].embed(x), keep.to(torch.float32)], dim=-1)
                out.append(x.float())
        return out

    def baselines(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        return [torch.cat([torch.zeros_like(x[..., :-1]), x[..., -1:]], dim=-1) if p.mode == "tokens" else
                p.baseline.to(x.dtype).expand_as(x).clone() if p.mode != "pixels" else torch.zeros_like(x)
                for p, x in zip(self.parts, tensors)]

    def raw(self, *tensors: torch.Tensor) -> torch.Tensor:
        """The output head's raw values (logit, class logits, standardised number) from attribution-space tensors."""
        parts, maps = [], []
        for p, x in zip(self.parts, tensors):
            if p.mode == "tokens":
                parts.append(self.encoders[p.key].pool(x[..., -1] > 0.5, x[..., :-1]))
            elif p.mode == "pixels" and p.key == self.maps_key:  # a spatial head also reads its feature maps
                maps = self.encoders[p.key].feature_maps(x)
                parts.append(maps[-1].mean(dim=(2, 3)))
            else:
                parts.append(self.encoders[p.key](x) if p.mode == "pixels" else x)
        encoded = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        h = self.net.hidden(encoded)
        return self.head(h, maps) if self.output.spatial else self.head(h)

    def score(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.output.explained_score(self.raw(*tensors))

    def run_raw(self, tensors: list[torch.Tensor], batch_size: int = 1024) -> np.ndarray:
        chunks = []
        with torch.no_grad():
            for start in range(0, len(tensors[0]), batch_size):
                chunks.append(self.raw(*[x[start:start + batch_size] for x in tensors]).numpy())
        return np.concatenate(chunks)

    def score_name(self) -> str:
        return self.output.explained_score_name()

    def targets(self, raw: np.ndarray) -> np.ndarray | None:
        return self.output.explained_class(raw)

    def per_column(self, attributions: list[torch.Tensor]) -> np.ndarray:
        """(rows, columns) attributions: each column's features summed."""
        columns = []
        for p, a in zip(self.parts, attributions):
            if p.mode == "dense":
                columns += [a[:, s].sum(1) for s in p.slices]
            else:
                columns.append(a.reshape(len(a), -1).sum(1))
        return torch.stack(columns, dim=1).numpy()


@dataclass
class Attribution:
    columns: list[str]
    values: np.ndarray  # (rows, columns)
    score: np.ndarray  # (rows,) the explained score
    baseline_score: np.ndarray  # (rows,)
    delta: np.ndarray  # (rows,) completeness error: sum(values) - (score - baseline_score)
    raw: np.ndarray  # the head's raw outputs
    target: np.ndarray | None  # the explained class per row (category outputs)
    pixels: dict[str, np.ndarray] = field(default_factory=dict)  # image column → (rows, H, W) signed saliency
    score_name: str = ""
    tokens: dict[str, list[np.ndarray]] = field(default_factory=dict)  # text column → per row, one value per token


def _integrate(ig: Any, space: Space, x: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...],
               tgt: torch.Tensor | None, steps: int, internal_batch_size: int, change: np.ndarray
               ) -> list[torch.Tensor]:
    """Integrated Gradients at ``steps``; where the sum of a row's attributions misses its score change by more
    than ``COMPLETE``, once more at ``REFINE`` × the steps. A wide encoded input (thousands of random-kernel
    features into a ReLU network) can need hundreds of steps where a table needs 64: refining only then keeps the
    common case as cheap as before and every explanation complete."""
    for n in (steps, steps * REFINE):
        attributions = [a.detach() for a in ig.attribute(x, baselines=b, target=tgt, n_steps=n,
                                                         internal_batch_size=internal_batch_size)]
        if np.abs(space.per_column(attributions).sum(1) - change).max() <= COMPLETE:
            break
    return attributions


def attribute(space: Space, tensors: list[torch.Tensor], steps: int = STEPS,
              internal_batch_size: int = INTERNAL_BATCH) -> Attribution:
    """Integrated Gradients of the explained score for every row, ``ROW_CHUNK`` rows at a time."""
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(space.score)
    raw = space.run_raw(tensors)
    target = space.targets(raw)
    values, scores, base_scores = [], [], []
    pixels: dict[str, list[np.ndarray]] = {p.key: [] for p in space.parts if p.mode == "pixels"}
    tokens: dict[str, list[np.ndarray]] = {p.key: [] for p in space.parts if p.mode == "tokens"}
    for start in range(0, len(tensors[0]), ROW_CHUNK):
        x = tuple(t[start:start + ROW_CHUNK].clone().requires_grad_(True) for t in tensors)
        b = tuple(space.baselines(list(x)))
        tgt = None if target is None else torch.as_tensor(target[start:start + ROW_CHUNK])
        with torch.no_grad():
            s, sb = space.score(*x), space.score(*b)
            if tgt is not None:
                s, sb = s.gather(1, tgt[:, None])[:, 0], sb.gather(1, tgt[:, None])[:, 0]
        attributions = _integrate(ig, space, x, b, tgt, steps, internal_batch_size, (s - sb).numpy())
        values.append(space.per_column(attributions))
        scores.append(s.numpy())
        base_scores.append(sb.numpy())
        for j, (p, a) in enumerate(zip(space.parts, attributions)):
            if p.mode == "pixels":
                pixels[p.key].append(a.sum(1).numpy())
            if p.mode == "tokens":  # summed over the embedding; padding positions left out
                per_token, kept = a.sum(-1).numpy(), (x[j][..., -1] > 0.5).detach().numpy()
                tokens[p.key] += [row[k] for row, k in zip(per_token, kept)]
    values_ = np.concatenate(values).astype(np.float64)
    score, base = np.concatenate(scores).astype(np.float64), np.concatenate(base_scores).astype(np.float64)
    return Attribution(space.columns, values_, score, base, values_.sum(1) - (score - base), raw, target,
                       {k: np.concatenate(v) for k, v in pixels.items()}, space.score_name(), tokens)
