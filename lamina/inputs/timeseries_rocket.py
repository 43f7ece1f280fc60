"""Random convolution kernel features (MiniRocket, Dempster et al., 2021) as a timeseries encoder.

84 fixed kernels of length 9 (weights -1, three of them 2: every choice of 3 positions of 9) at exponentially
spaced dilations; each (kernel, dilation) pair gets biases at quantiles of its response to a training row, and a
feature per bias: the proportion of positive values (PPV) over the row's real readings; plus the masked max of each
response (ROCKET's second feature). Nothing in the encoder trains: the features are standardised with their training
mean and std and go to Lamina's hidden and output layers, which learn the classifier (MiniRocket's ridge).

``fit_rocket`` draws the dilations, channel subsets and biases from the transformed training rows (seeded: the
same data gives the same features) and returns plain JSON state; ``RocketEncoder`` rebuilds the kernels from it.

A row's features depend on its readings only, and nothing trains, so rows that are not augmented are computed once
and kept by content (``FeatureCache``): the fit's pass over the training rows serves every epoch, every validation
pass and every cross-fitted member after it. On ACSF1 (1,460 readings) one pass over 100 rows takes 25 s on one
loaded core; recomputing it every epoch, five folds over, was most of a 2,351 s run (docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lamina.inputs.timeseries_encoders import augmented, split_mask

KERNEL_LENGTH = 9
MAX_DILATIONS = 32
STD_FLOOR = 0.01  # a near-constant feature (PPV steps are 1 / length) is centred, not blown up
ROW_CHUNK = 1 << 17  # elements per row of one (kernels, biases, time) comparison: bounds the encoder's memory
CACHE_VALUES = 1 << 24  # feature values the cache keeps (64 MB): 2,000 rows of 4,000 features twice over


def kernel_positions() -> np.ndarray:
    """(84, 3): the positions of the weight 2 in each MiniRocket kernel (the other six weigh -1, the sum is zero)."""
    return np.asarray(list(itertools.combinations(range(KERNEL_LENGTH), 3)), dtype=np.int64)


KERNELS = len(kernel_positions())


def _dilations(length: int, per_kernel: int) -> tuple[list[int], list[int]]:
    """Exponentially spaced dilations whose receptive field fits ``length``, and how many biases each gets."""
    top = math.log2(max(length - 1, 1) / (KERNEL_LENGTH - 1)) if length > KERNEL_LENGTH else 0.0
    count = max(1, min(MAX_DILATIONS, per_kernel))
    drawn = np.floor(2 ** np.linspace(0, max(top, 0.0), count)).astype(int)
    dilations, repeats = np.unique(drawn, return_counts=True)
    biases = (repeats * (per_kernel // count)).astype(int)
    biases[: per_kernel % count] += 1  # the remainder to the smallest dilations, as MiniRocket
    return dilations.tolist(), biases.tolist()


def _responses(values: torch.Tensor, channels: torch.Tensor, positions: torch.Tensor, dilation: int
               ) -> torch.Tensor:
    """(n, 84, T): every kernel at one dilation, zero padded to keep the length, summed over its channels.

    As MiniRocket computes it: 3 × (the three readings under a 2) − (all nine). Elementwise sums in a fixed order,
    not a convolution, so a row's responses are bit for bit the same however far its batch is padded (a
    convolution's rounding depends on its algorithm, and a reading equal to a bias would flip) and stay float32."""
    steps, pad = values.shape[2], dilation * (KERNEL_LENGTH - 1) // 2
    if values.shape[1] > 1:  # a kernel is linear: sum its channels first, then one response per kernel
        values = (values.unsqueeze(1) * channels[None, :, :, None]).sum(2)  # (n, 84, T)
    padded = F.pad(values, (pad, pad))
    shifted = [padded[:, :, j * dilation: j * dilation + steps] for j in range(KERNEL_LENGTH)]
    total = shifted[0]
    for s in shifted[1:]:
        total = total + s
    if values.shape[1] == 1:
        return 3 * _picked(shifted, positions) - total  # (n, 84, T)
    stacked = torch.stack(shifted, dim=1)  # (n, 9, 84, T): kernel k reads its own combined channel
    k = torch.arange(len(positions), device=values.device)
    picked = stacked[:, positions[:, 0], k] + stacked[:, positions[:, 1], k] + stacked[:, positions[:, 2], k]
    return 3 * picked - total  # (n, 84, T)


def _picked(shifted: list[torch.Tensor], positions: torch.Tensor) -> torch.Tensor:
    """One channel: each kernel's three readings under a 2, summed (a + b) + c as the indexing sum would, bit for
    bit, but from the 36 pair sums: several times faster than gathering 84 rows three times (ACSF1)."""
    pairs: dict[tuple[int, int], torch.Tensor] = {}
    out = []
    for a, b, c in positions.tolist():
        if (a, b) not in pairs:
            pairs[(a, b)] = shifted[a][:, 0] + shifted[b][:, 0]
        out.append(pairs[(a, b)] + shifted[c][:, 0])
    return torch.stack(out, dim=1)


def _channel_subsets(channels: int, rng: np.random.Generator) -> np.ndarray:
    """(84, C) of 0 / 1: each kernel sums its response over a random subset of the channels (MiniRocket's
    multivariate variant; the one channel when there is one)."""
    out = np.zeros((KERNELS, channels), dtype=np.float32)
    for k in range(KERNELS):
        size = int(2 ** rng.uniform(0, math.log2(min(channels, KERNEL_LENGTH) + 1))) if channels > 1 else 1
        out[k, rng.choice(channels, min(size, channels), replace=False)] = 1.0
    return out


class FeatureCache:
    """Un-standardised feature rows by (kernels, readings), least recently used dropped first; thread safe (serve)."""

    def __init__(self, limit: int = CACHE_VALUES) -> None:
        self.limit, self.size = limit, 0
        self.rows: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.lock = threading.Lock()

    @staticmethod
    def keys(kernels: bytes, x: torch.Tensor) -> list[bytes]:
        """A row's key: its kernels' digest and its readings up to its last real one (padding is no part of it)."""
        rows = x.detach().cpu()
        real = rows[:, -1] > 0.5
        ends = torch.where(real.any(1), real.shape[1] - real.flip(1).int().argmax(1), 0).tolist()
        return [hashlib.blake2b(kernels + repr(tuple(r.shape)).encode() + r.numpy().tobytes(), digest_size=20).digest()
                for r in (rows[i, :, :end].contiguous() for i, end in enumerate(ends))]

    def get(self, key: bytes) -> torch.Tensor | None:
        with self.lock:
            found = self.rows.get(key)
            if found is not None:
                self.rows.move_to_end(key)
            return found

    def put(self, key: bytes, row: torch.Tensor) -> None:
        with self.lock:
            if key not in self.rows:
                self.rows[key] = row
                self.size += row.numel()
            while self.size > self.limit and self.rows:
                self.size -= self.rows.popitem(last=False)[1].numel()


CACHE = FeatureCache()


def fit_rocket(x: torch.Tensor, features: int, seed: int = 0) -> dict[str, Any]:
    """Dilations, channel subsets and biases from transformed training rows ``x (n, C + 1, T)`` (plain JSON)."""
    rng = np.random.default_rng(seed)
    values, keep = split_mask(x)
    lengths = keep[:, 0].sum(1).long()
    first = features // KERNELS
    per_kernel = max(1, first - len(_dilations(int(lengths.max()), first)[0]))  # room for one max per dilation
    dilations, counts = _dilations(int(lengths.max()), per_kernel)
    golden = (math.sqrt(5) - 1) / 2
    quantile_at, groups = 0, []
    for dilation, count in zip(dilations, counts):
        subsets = _channel_subsets(values.shape[1], rng)
        row = int(rng.choice(np.flatnonzero(lengths.numpy() > 0)))
        response = _responses(values[row: row + 1, :, : int(lengths[row])], torch.from_numpy(subsets),
                              torch.from_numpy(kernel_positions()), dilation)[0].double().numpy()
        quantiles = ((np.arange(quantile_at, quantile_at + count * KERNELS) + 1) * golden % 1).reshape(KERNELS, count)
        quantile_at += count * KERNELS
        biases = np.stack([np.quantile(response[k], quantiles[k]) for k in range(KERNELS)]).astype(np.float32)
        groups.append({"dilation": int(dilation), "channels": subsets.tolist(), "biases": biases.tolist()})
    state: dict[str, Any] = {"groups": groups, "length": int(lengths.max()), "mean": [], "std": []}
    with torch.no_grad():
        f = RocketEncoder(values.shape[1], state).cached_features(x).double()
    std = f.std(0, unbiased=False)
    state["mean"], state["std"] = f.mean(0).tolist(), std.clamp(min=STD_FLOOR).tolist()
    return state


def rocket_width(state: dict[str, Any]) -> int:
    return sum(len(g["biases"]) * (len(g["biases"][0]) + 1) for g in state["groups"])


class RocketEncoder(nn.Module):
    """PPV and max features of fixed random kernels, standardised (no trained weights; an empty row gives zeros)."""

    def __init__(self, channels: int, state: dict[str, Any], augment: nn.Module | None = None) -> None:
        super().__init__()
        self.augment = augment
        self.dilations = [int(g["dilation"]) for g in state["groups"]]
        for i, g in enumerate(state["groups"]):  # buffers, not weights: rebuilt from the type's state
            self.register_buffer(f"channels{i}", torch.tensor(g["channels"], dtype=torch.float32), persistent=False)
            self.register_buffer(f"bias{i}", torch.tensor(g["biases"], dtype=torch.float32), persistent=False)
        self.register_buffer("positions", torch.from_numpy(kernel_positions()), persistent=False)
        self.out_dim = rocket_width(state)
        # biases compared at once: a constant of the fitted length, not of the batch, so an export traces one graph
        self.chunk = max(1, ROW_CHUNK // (KERNELS * int(state.get("length", 1))))
        if state["mean"]:
            self.register_buffer("mean", torch.tensor(state["mean"], dtype=torch.float32), persistent=False)
            self.register_buffer("std", torch.tensor(state["std"], dtype=torch.float32), persistent=False)
        self.standardise = bool(state["mean"])
        self.kernels = hashlib.blake2b(json.dumps(state["groups"]).encode(), digest_size=16).digest()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        values, keep = split_mask(x)
        count = keep.sum(2, keepdim=True).clamp(min=1.0)  # (n, 1, 1)
        padding = keep <= 0.5
        out = []
        for i, dilation in enumerate(self.dilations):
            response = _responses(values, getattr(self, f"channels{i}"), self.positions, dilation)  # (n, K, T)
            response = response.masked_fill(padding, float("-inf"))  # never above a bias, never the max
            biases = getattr(self, f"bias{i}")  # (K, B)
            ppv = [(response.unsqueeze(2) > biases[None, :, j: j + self.chunk, None]).to(values.dtype).sum(3)
                   for j in range(0, biases.shape[1], self.chunk)]  # float sums: twice as fast as bool's int64
            out.append((torch.cat(ppv, dim=2) / count).flatten(1))  # PPV: (n, K × biases)
            top = response.amax(2)
            out.append(torch.where(torch.isfinite(top), top, torch.zeros_like(top)))
        return torch.cat(out, dim=1)

    def cached_features(self, x: torch.Tensor) -> torch.Tensor:
        """``features(x)``, from the cache for rows seen before (by content), the rest computed and kept."""
        if x.requires_grad or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting():
            return self.features(x)
        keys = CACHE.keys(self.kernels, x)
        found = [CACHE.get(k) for k in keys]
        missing = [i for i, f in enumerate(found) if f is None]
        if missing:
            with torch.no_grad():
                computed = self.features(x[missing])
            for i, row in zip(missing, computed):
                found[i] = row.clone()
                CACHE.put(keys[i], found[i])
        return torch.stack(found).to(x.device) if found else self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        augmenting = self.training and self.augment is not None
        x = augmented(self, x)
        f = self.features(x) if augmenting else self.cached_features(x)
        if self.standardise:
            f = (f - self.mean) / self.std
        return f * (x[:, -1].amax(1, keepdim=True) > 0.5).to(f.dtype)
