"""Split one table into train/validation/test, or check separate train/validation/test tables."""

from __future__ import annotations

import logging
import math
from numbers import Real

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from lamina.errors import LaminaError, where

SPLITS = ("train", "validation", "test")
METHODS = ("random", "stratified", "column", "group", "time")

# Accepted spellings in a split column, after strip() and lower().
_ALIASES = {"train": "train", "validation": "validation", "val": "validation", "valid": "validation",
            "dev": "validation", "test": "test"}

logger = logging.getLogger("lamina")


def split_frame(
    df: pd.DataFrame,
    method: str,
    fractions: tuple[float, float, float],
    seed: int,
    column: str | None = None,
    stratify_on: str | None = None,
    source: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Split ``df`` into {"train", "validation", "test"} frames that keep ``df``'s original index.

    ``method`` is "random" (by ``fractions``), "stratified" (by ``fractions``, keeping the class ratios of the
    ``stratify_on`` column), "column" (by the train/validation/test values of ``column``, which is dropped) or
    "time" (by ``fractions`` of the rows in the order of the times in ``column``: train on the past, test on the
    future; rows of one time stay in one split).
    The same ``seed`` always gives the same split. ``source`` names the file in error messages.
    """
    if method not in METHODS:
        raise LaminaError(where(source, f"unknown data.split.method {method!r}; use one of {', '.join(METHODS)}"))
    if method == "column":
        return _by_column(df, column, source)
    if method == "group":
        return _by_group(df, column, fractions, seed, source)
    train_fraction, validation_fraction, test_fraction = _check_fractions(fractions, source)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise LaminaError(where(source, f"data.split.seed must be a non-negative integer, got {seed!r}"))
    n_validation, n_test = _counts(len(df), validation_fraction, test_fraction, source)
    if method == "time":
        positions = _by_time(df, column, n_validation, n_test, source)
    elif method == "stratified":
        positions = _stratified(df, stratify_on, n_validation, n_test, int(seed), source)
    else:
        positions = _random(len(df), n_validation, n_test, int(seed))
    # Sorting keeps each split in file order; the shuffle only decides membership.
    return {name: df.iloc[np.sort(positions[name])] for name in SPLITS}


def files_split(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Check separate train/validation/test frames against train's columns and return all three.

    Missing validation/test keys become empty frames; every frame gets train's column order.
    """
    unknown = [key for key in frames if key not in SPLITS]
    if unknown:
        raise LaminaError(f"unknown split file key(s) {', '.join(map(repr, unknown))}; use {', '.join(SPLITS)}")
    if "train" not in frames:
        raise LaminaError("no train file given; a train file is required when splits come from separate files")
    train = frames["train"]
    columns = list(train.columns)
    result = {"train": train}
    for key in SPLITS[1:]:
        frame = frames.get(key)
        if frame is None:
            result[key] = train.iloc[0:0]
            continue
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise LaminaError(f"the data.{key} file is missing column(s) {', '.join(map(repr, missing))} that the train file "
                              "has; every split file needs the same columns")
        result[key] = frame[columns]
    return result


def _check_fractions(fractions: tuple[float, float, float], source: str | None) -> tuple[float, float, float]:
    message = (f"data.split.fractions must be three non-negative numbers (train, validation, test) that sum to 1, with "
               f"train > 0; got {fractions!r}")
    try:
        values = tuple(fractions)
    except TypeError:
        raise LaminaError(where(source, message)) from None
    if len(values) != 3 or not all(isinstance(v, Real) and not isinstance(v, bool) for v in values):
        raise LaminaError(where(source, message))
    train, validation, test = (float(v) for v in values)
    if not all(math.isfinite(v) and v >= 0 for v in (train, validation, test)) or train <= 0:
        raise LaminaError(where(source, message))
    if abs(train + validation + test - 1) > 1e-6:
        raise LaminaError(where(source, f"{message} (they sum to {train + validation + test:g})"))
    return train, validation, test


def _counts(n: int, validation_fraction: float, test_fraction: float, source: str | None) -> tuple[int, int]:
    """Rows for validation and test: a positive fraction gets at least one row, train always keeps one."""
    min_validation = 1 if validation_fraction > 0 else 0
    needed = 1 + min_validation
    if n < needed:
        raise LaminaError(where(source, f"only {n} rows; a split into train{' and validation' * min_validation} needs "
                                f"at least {needed} rows; add rows or change the split"))
    min_test = 1 if test_fraction > 0 and n > needed else 0
    n_validation = max(min_validation, round(n * validation_fraction))
    n_test = max(min_test, round(n * test_fraction))
    excess = n_validation + n_test + 1 - n
    if excess > 0:
        cut = min(excess, n_test - min_test)
        n_test -= cut
        n_validation -= excess - cut
    return n_validation, n_test


def _random(n: int, n_validation: int, n_test: int, seed: int) -> dict[str, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_train = n - n_validation - n_test
    return {"train": order[:n_train], "validation": order[n_train:n_train + n_validation],
            "test": order[n_train + n_validation:]}


def _stratified(df: pd.DataFrame, stratify_on: str | None, n_validation: int, n_test: int, seed: int,
                source: str | None) -> dict[str, np.ndarray]:
    if not stratify_on:
        raise LaminaError(where(source, "the stratified split needs a column to stratify on; name a target "
                                "column or use the random split"))
    if stratify_on not in df.columns:
        raise LaminaError(where(source, f"column {stratify_on!r} to stratify the split on is missing; check the "
                                "column name"))
    # Codes instead of raw values: mixed types cannot be sorted by sklearn, and NaN becomes its own class.
    codes, classes = pd.factorize(df[stratify_on], use_na_sentinel=False)
    counts = np.bincount(codes, minlength=len(classes))
    needed = 1 + (n_validation > 0) + (n_test > 0)
    rarest = int(np.argmin(counts))
    reason = None
    if counts[rarest] < needed:
        reason = f"class {_show(classes[rarest])} has only {counts[rarest]} row(s), fewer than the {needed} splits"
    positions = np.arange(len(df))
    if reason is None:
        try:
            rest, test = _stratified_step(positions, codes, n_test, seed)
            train, validation = _stratified_step(rest, codes[rest], n_validation, seed)
            return {"train": train, "validation": validation, "test": test}
        except ValueError as error:
            reason = f"{' '.join(str(error).split())} (rarest class: {_show(classes[rarest])})"
    logger.warning(where(source, f"cannot stratify on column {stratify_on!r}: {reason}; using a random split "
                         "instead"))
    return _random(len(df), n_validation, n_test, seed)


def _stratified_step(positions: np.ndarray, codes: np.ndarray, size: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    if size == 0:
        return positions, positions[:0]
    kept, taken = train_test_split(positions, test_size=size, stratify=codes, random_state=seed)
    return kept, taken


def _by_time(df: pd.DataFrame, column: str | None, n_validation: int, n_test: int, source: str | None
             ) -> dict[str, np.ndarray]:
    """The earliest rows train, the next validate, the latest test; a tie at a boundary goes to the earlier split, so
    no time is both past and future."""
    if not column or column not in df.columns:
        raise LaminaError(where(source, f"time column {column!r} for data.split.method 'time' is missing; set "
                                "data.split.time_column to a column of numbers or dates"))
    times = _times(df[column], column, source)
    order = np.argsort(times, kind="stable")
    ranked = times[order]
    n = len(df)
    cuts = [n - n_validation - n_test, n - n_test]
    # move each cut past the rows that share the time just before it
    cuts = [int(np.searchsorted(ranked, ranked[c - 1], side="right")) if 0 < c < n else c for c in cuts]
    cuts[1] = max(cuts)
    return {"train": order[:cuts[0]], "validation": order[cuts[0]:cuts[1]], "test": order[cuts[1]:]}


def _times(values: pd.Series, column: str, source: str | None) -> np.ndarray:
    """Numbers as they are, else dates as nanoseconds; a missing or unreadable one is an error naming its row."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all():
        return numbers.to_numpy(dtype=np.float64)
    dates = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    bad = np.flatnonzero(dates.isna().to_numpy())
    if bad.size:
        row = values.index[bad[0]]
        row = row + 1 if isinstance(row, (int, np.integer)) else bad[0] + 1
        raise LaminaError(where(source, f"column {column!r}, row {row}: {values.iloc[bad[0]]!r} is neither a number "
                                "nor a date; the time split orders rows by it"))
    return dates.astype("int64").to_numpy().astype(np.float64)


def _by_column(df: pd.DataFrame, column: str | None, source: str | None) -> dict[str, pd.DataFrame]:
    if not column:
        raise LaminaError(where(source, "the column split needs data.split.column: a column holding train / "
                                "validation / test"))
    if column not in df.columns:
        raise LaminaError(where(source, f"split column {column!r} is missing; add it with values train, validation "
                                "or test, or use another split method"))
    values = df[column].tolist()
    labels = [None if _is_missing(v) else _ALIASES.get(str(v).strip().lower()) for v in values]
    for position, (label, value) in enumerate(zip(labels, values)):
        if label is None:
            index = df.index[position]
            row = index + 1 if isinstance(index, (int, np.integer)) else position + 1
            shown = "an empty value" if _is_missing(value) else repr(value)
            raise LaminaError(where(source, f"column {column!r}, row {row}: {shown} is not a split; use train, "
                                    "validation (or val, valid, dev) or test"))
    rest = df.drop(columns=[column])
    mask = np.array(labels)
    frames = {name: rest[mask == name] for name in SPLITS}
    if frames["train"].empty:
        raise LaminaError(where(source, f"column {column!r} marks no rows as train; mark some rows train"))
    return frames


def _by_group(df: pd.DataFrame, column: str | None, fractions: tuple[float, float, float], seed: int,
              source: str | None) -> dict[str, pd.DataFrame]:
    """Whole groups (a person's rows) to each split, by ``fractions`` of the groups: held-out people are unseen."""
    if not column or column not in df.columns:
        raise LaminaError(where(source, f"the group split needs data.split.column naming a column of the data (got "
                                f"{column!r}); name the column whose values (people) are kept together"))
    _, validation_fraction, test_fraction = _check_fractions(fractions, source)
    groups = pd.Series(df[column].dropna().astype(str).unique())
    if len(groups) < 2 + (validation_fraction > 0) + (test_fraction > 0):
        raise LaminaError(where(source, f"column {column!r} has {len(groups)} distinct value(s); a split by group "
                                "needs one for each of train, validation and test; add people or use fractions with 0"))
    n_validation, n_test = _counts(len(groups), validation_fraction, test_fraction, source)
    order = np.random.default_rng(seed).permutation(np.sort(groups.to_numpy()))
    split_of = {g: "test" for g in order[:n_test]}
    split_of.update({g: "validation" for g in order[n_test:n_test + n_validation]})
    assigned = df[column].astype(str).map(lambda g: split_of.get(g, "train")).where(df[column].notna(), "train")
    return {name: df[assigned.to_numpy() == name] for name in SPLITS}


def _is_missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _show(value: object) -> str:
    """repr() of a class label without numpy's 'np.int64(...)' wrapper."""
    if _is_missing(value):
        return "<missing>"
    return repr(value.item() if isinstance(value, np.generic) else value)
