"""Time series (sensor recordings): one sequence of readings per row, one or several channels.

A cell is a list of numbers (one channel) or a list of per-channel lists (channels × time), as Parquet and JSON lines
store them; in CSV it is a string: numbers separated by spaces or commas, channels separated by ';', or a JSON list.
Rows may have different lengths; every row must have the channel count of the training split.

The fitted state is the channel count, the length cap and each channel's training mean and standard deviation.
``transform`` returns float32 ``(n, C + 1, T)``: the standardised channels, zero after a row's end, and one last
channel that is the mask (1 at a real reading). Each split is padded to its own longest row, capped at
``max_length`` (longer rows are truncated, keeping the start, with one warning). Every encoder ignores padding, so a
row's vector does not depend on how far it was padded.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn

from lamina.errors import LaminaError, row_name
from lamina.inputs.base import InputType, Options
from lamina.inputs.classical import Features
from lamina.inputs.timeseries_augment import SeriesAugment
from lamina.inputs.timeseries_encoders import CNNEncoder, GRUEncoder, InceptionEncoder, TransformerEncoder
from lamina.inputs.timeseries_rocket import RocketEncoder, fit_rocket, rocket_width

log = logging.getLogger("lamina")

LENGTH_CAP = 4096  # the default max_length is the training split's longest row, at most this
ROCKET_SAMPLE = 2000  # training rows the random kernels' biases and feature statistics are drawn from


class TimeseriesOptions(Options):
    max_length: int | None = Field(None, ge=1, le=1_000_000,
                                   description=f"readings kept per row; default the training split's longest, at most {LENGTH_CAP}")
    normalization: Literal["channel", "none"] = Field("channel", description="channel: z-score per channel (training)")
    missing: Literal["error", "fill"] = Field(
        "error", description="NaN readings and empty cells: an error, or fill (the channel's mean; an empty row encodes as zeros)")
    # rocket by default: on ItalyPowerDemand and PickupGestureWiimoteZ (benchmarks/series.py) it matched or beat
    # the inception network in a quarter of its training time (docs/benchmarks.md, "Series on small sets")
    encoder: Literal["rocket", "inception", "cnn", "gru", "transformer"] = "rocket"
    width: int = Field(64, ge=1, description="channels of the convolutions (inception: of a module's 4 branches "
                       "together), GRU hidden size, transformer width")
    layers: int | None = Field(None, ge=1, le=32, description="cnn: dilated blocks (dilation 1, 2, 4, ...), default "
                               "4; inception: modules (a residual shortcut every 3), default 6; gru: 1; transformer: 2")
    # 4,000, not MiniRocket's 10,000: the one pass over every row (training, evaluation, serving) costs linearly
    # in the count; with ridge the two tie on ACSF1, Italy and Pickup, 4k is 2 points lower on OSULeaf
    # (benchmarks/series.py)
    features: int = Field(4_000, ge=100, le=100_000, description="rocket: about this many random-kernel features")
    kernel_size: int = Field(5, ge=1, description="cnn: convolution width")
    patch: int = Field(8, ge=1, description="transformer: readings per token")
    heads: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    # Default: off for rocket, on for the trained encoders. Rocket's kernels are fixed, so un-augmented rows are
    # transformed once (FeatureCache) instead of every epoch; ACSF1 went from 0.33 (augmented, one network) to 0.87
    # (not augmented, cross-fitted) (docs/benchmarks.md, "Series on small sets").
    augment: bool | None = Field(None, description="random augmentation in training only (jitter, scaling, warp, "
                                 "window); default: off for the rocket encoder, on for the others")
    jitter: float = Field(0.03, ge=0, description="std of added noise, in channel standard deviations")
    scaling: float = Field(0.1, ge=0, description="std of a row's random amplitude factor around 1")
    warp: float = Field(0.2, ge=0, lt=1, description="time warping: local speed varies by up to this fraction")
    window: float = Field(0.9, gt=0, le=1, description="window slicing: a random window of at least this fraction "
                          "of the row, stretched to its length (1: off)")


# --- parsing cells ----------------------------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s,]+")


class CellError(ValueError):
    """Why a cell is not a sequence of numbers (the caller adds column and row)."""


def _numbers(values: Any) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        bad = next((v for v in values if not _is_number(v)), values)
        raise CellError(f"{bad!r} is not a number") from None


def _is_number(value: Any) -> bool:
    try:
        float(value)
        return not isinstance(value, (str, bytes)) or bool(value.strip())
    except (TypeError, ValueError):
        return False


def _from_text(text: str) -> Any:
    text = text.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise CellError(f"not a valid JSON list ({e.msg} at character {e.pos})") from None
    channels = [c for c in text.split(";")] if ";" in text else [text]
    parsed = []
    for channel in channels:
        tokens = [t for t in _SEPARATORS.split(channel.strip()) if t]
        bad = next((t for t in tokens if not _is_number(t)), None)
        if bad is not None:
            raise CellError(f"{bad!r} is not a number")
        parsed.append([float(t) for t in tokens])
    return parsed if ";" in text else parsed[0]


def parse_cell(value: Any) -> np.ndarray | None:
    """A cell as float64 ``(C, T)``; None for a missing cell. Raises ``CellError`` for anything else."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        if not value.strip():
            return None
        value = _from_text(value)
    elif not isinstance(value, (list, tuple, np.ndarray)):
        if _is_number(value):
            if math.isnan(float(value)):
                return None  # pandas' missing value
            return np.array([[float(value)]])
        raise CellError(f"{value!r} is not a sequence of numbers")
    if len(value) and all(isinstance(v, (list, tuple, np.ndarray)) for v in value):
        lengths = {len(v) for v in value}
        if len(lengths) > 1:
            raise CellError(f"its channels have different lengths ({', '.join(str(n) for n in sorted(lengths))})")
        return _numbers([_numbers(v) for v in value]).reshape(len(value), -1)
    if any(isinstance(v, (list, tuple, np.ndarray)) for v in value):
        raise CellError("it mixes numbers and lists; give one list of numbers or one list per channel")
    return _numbers(value).reshape(1, -1)


def looks_like_series(values: pd.Series, min_length: int = 8) -> bool:
    """For ``lamina init``: every (sampled) cell is a list of numbers, or a string of many numbers."""
    present = values.dropna().iloc[:500]
    if present.empty:
        return False
    lists = all(isinstance(v, (list, tuple, np.ndarray)) for v in present)
    if not lists and not all(isinstance(v, str) for v in present):
        return False
    try:
        lengths = [parse_cell(v).shape[1] for v in present]  # type: ignore[union-attr]
    except (CellError, AttributeError):
        return False
    return float(np.median(lengths)) >= (2 if lists else min_length)


# --- summary statistics (the classical counterpart's features) ------------------------------------------------------

SUMMARY = ("mean", "std", "min", "max", "q10", "q25", "q50", "q75", "q90", "slope", "diff_std", "abs_diff_mean",
           "length")


def summary_features(x: np.ndarray) -> np.ndarray:
    """Per channel statistics of transformed rows ``(n, C + 1, T)`` over their real readings: ``(n, C × len(SUMMARY))``."""
    values, keep = x[:, :-1].astype(np.float64), x[:, -1:] > 0.5
    n, channels, _ = values.shape
    length = keep.sum(2)  # (n, 1)
    count = np.maximum(length, 1)
    masked = np.where(keep, values, np.nan)
    with np.errstate(all="ignore"), _quiet():
        mean = np.nansum(masked, 2) / count
        std = np.sqrt(np.nansum((masked - mean[..., None]) ** 2, 2) / count)
        q = np.nanquantile(masked, [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0], axis=2)  # (7, n, C)
        t = np.where(keep, np.arange(values.shape[2]), np.nan)
        tc = t - np.nansum(t, 2, keepdims=True) / count[..., None]
        slope = np.nansum(tc * (masked - mean[..., None]), 2) / np.maximum(np.nansum(tc ** 2, 2), 1e-12)
        diff = np.diff(masked, axis=2)
        diff_std, abs_diff = np.nanstd(diff, 2), np.nanmean(np.abs(diff), 2)
    stats = [mean, std, q[0], q[6], q[1], q[2], q[3], q[4], q[5], slope, diff_std, abs_diff,
             np.broadcast_to(length, (n, channels)).astype(np.float64)]
    out = np.stack(stats, axis=2).reshape(n, -1)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


class _quiet:
    """numpy warns 'All-NaN slice' for empty rows; their statistics become 0 on purpose."""

    def __enter__(self) -> None:
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: Any) -> None:
        self._w.__exit__(*exc)


# --- the type -------------------------------------------------------------------------------------------------------

class TimeseriesInput(InputType):
    kind = "timeseries"

    @classmethod
    def tune_space(cls) -> dict[str, dict[str, Any]]:
        return {"encoder": {"choices": ["rocket", "inception", "cnn"]}, "jitter": {"low": 0.0, "high": 0.1},
                "scaling": {"low": 0.0, "high": 0.2}}
    Options = TimeseriesOptions

    def parse(self, values: pd.Series, channels: int | None = None) -> list[np.ndarray]:
        """Each row as float64 ``(C, T)`` (empty rows ``(C, 0)`` when ``missing: fill``); one-line errors otherwise."""
        fill = self.options.missing == "fill"
        advice = "; fix the data, or set the column's option missing: fill"
        rows: list[np.ndarray] = []
        for label, value in values.items():
            where = f"column '{self.name}' row {row_name(label)}"
            try:
                cell = parse_cell(value)
            except CellError as e:
                raise LaminaError(f"{where}: {e}; write a list of numbers, one list per channel, or numbers "
                                  "separated by spaces or commas") from None
            if cell is None or cell.shape[1] == 0:
                if not fill:
                    raise LaminaError(f"{where}: the sequence is {'missing' if cell is None else 'empty'}{advice}")
                cell = np.zeros((channels or 1, 0))
            if channels is not None and cell.shape[0] != channels:
                raise LaminaError(f"{where}: {cell.shape[0]} channel(s), but the training split has {channels}; "
                                  "give every row the same channels")
            if not fill and not np.isfinite(cell).all():
                c, t = (int(i) for i in np.argwhere(~np.isfinite(cell))[0])
                of = f" of channel {c + 1}" if cell.shape[0] > 1 else ""
                raise LaminaError(f"{where}: reading {t + 1}{of} is {cell[c, t]}{advice}")
            if cell.shape[1]:  # an empty row (missing: fill) says nothing about the channel count
                channels = cell.shape[0]
            rows.append(cell)
        return rows

    def fit(self, values: pd.Series) -> None:
        rows = self.parse(values)
        if not rows or all(r.shape[1] == 0 for r in rows):
            raise LaminaError(f"column '{self.name}': every sequence in the training split is empty or missing")
        channels = next(r.shape[0] for r in rows if r.shape[1])
        stacked = np.concatenate([r for r in rows if r.shape[1]], axis=1)
        finite = np.isfinite(stacked)
        with np.errstate(all="ignore"), _quiet():
            mean = np.nan_to_num(np.nanmean(np.where(finite, stacked, np.nan), 1))
            std = np.nan_to_num(np.nanstd(np.where(finite, stacked, np.nan), 1))
        if self.options.normalization == "none":
            mean, std = np.zeros(channels), np.ones(channels)
        std = np.where(std > 1e-8 * np.maximum(1.0, np.abs(mean)), std, 1.0)  # a flat channel is only centred
        longest = max(r.shape[1] for r in rows)
        self.state = {"channels": channels, "max_length": self.options.max_length or min(longest, LENGTH_CAP),
                      "mean": mean.tolist(), "std": std.tolist()}
        if self.options.encoder == "rocket":  # the kernels' biases are quantiles of training responses
            sample = values.sample(n=min(len(values), ROCKET_SAMPLE), random_state=0) if len(values) else values
            self.state["rocket"] = fit_rocket(self.transform(sample), self.options.features)

    def transform(self, values: pd.Series) -> torch.Tensor:
        channels, cap = int(self.state["channels"]), int(self.state["max_length"])
        rows = self.parse(values, channels)
        truncated = sum(r.shape[1] > cap for r in rows)
        if truncated:
            log.warning("column '%s': %d of %d sequence(s) longer than %d readings truncated (start kept); raise "
                        "the option max_length to keep more", self.name, truncated, len(rows), cap)
        length = max(1, min(cap, max((r.shape[1] for r in rows), default=1)))
        mean = np.asarray(self.state["mean"])[:, None]
        std = np.asarray(self.state["std"])[:, None]
        out = np.zeros((len(rows), channels + 1, length), dtype=np.float32)
        for i, r in enumerate(rows):
            r = r[:, :cap]
            scaled = (r - mean) / std
            out[i, :channels, : r.shape[1]] = np.where(np.isfinite(scaled), scaled, 0.0)  # fill: the channel's mean
            out[i, channels, : r.shape[1]] = 1.0
        return torch.from_numpy(out)

    @property
    def width(self) -> int:
        o = self.options
        if o.encoder == "rocket":
            return rocket_width(self.state["rocket"])
        filters = o.width // 4
        return {"cnn": 2 * o.width, "inception": 4 * filters, "gru": 6 * o.width, "transformer": o.width}[o.encoder]

    def encoder(self) -> nn.Module:
        o, channels = self.options, int(self.state["channels"])
        layers = o.layers or {"cnn": 4, "inception": 6, "gru": 1, "transformer": 2}.get(o.encoder, 1)
        on = o.augment if o.augment is not None else o.encoder != "rocket"
        augment = SeriesAugment(o.jitter, o.scaling, o.warp, o.window) if on else None
        if o.encoder == "rocket":
            return RocketEncoder(channels, self.state["rocket"], augment)
        if o.encoder == "inception":
            if o.width < 4:
                raise LaminaError(f"column '{self.name}': the inception encoder needs width of at least 4 (4 branches)")
            return InceptionEncoder(channels, o.width, layers, o.dropout, augment)
        if o.encoder == "cnn":
            return CNNEncoder(channels, o.width, layers, o.kernel_size, o.dropout, augment)
        if o.encoder == "gru":
            return GRUEncoder(channels, o.width, layers, o.dropout, augment)
        if o.width % o.heads:
            raise LaminaError(f"column '{self.name}': width ({o.width}) must be a multiple of heads ({o.heads})")
        return TransformerEncoder(channels, o.width, layers, o.heads, o.patch, o.dropout, augment)

    def classical_features(self, values: pd.Series) -> Features:
        """``lamina compare``: per-channel summary statistics of the standardised readings (``SUMMARY``)."""
        x = summary_features(self.transform(values).numpy())
        names = [f"{self.name}_c{c}_{s}" for c in range(int(self.state["channels"])) for s in SUMMARY]
        return Features(dict(zip(names, x.T)), [x])

    def sole_input_counterparts(self, output: Any, split: dict[str, pd.DataFrame], y: dict[str, np.ndarray]
                                ) -> list[dict[str, Any]]:
        """1-NN by Euclidean distance and DTW, the time-series archives' reference classifiers."""
        from lamina.inputs.timeseries_classical import neighbour_rows

        return neighbour_rows(self, output, split, y)
