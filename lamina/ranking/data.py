"""From an interaction log to positives, a catalogue and a per-user split.

Protocol (the same for every model of a run): per user, the last positive interaction (by the time column, else a
seeded random one) is the test item and the one before it the validation item; users with one positive stay in
training only, users with two have no validation item. Rankings are over the whole catalogue, leaving out the
user's earlier (training, and for test also validation) items.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lamina.config import RecommendationConfig
from lamina.errors import LaminaError, where
from lamina.inputs.binary import label

log = logging.getLogger("lamina")
PROTOCOL = ("per-user split: the last positive of each user ({order}) is test, the one before validation; "
            "full ranking over all {items} items, leaving out the user's earlier items; users with one positive "
            "only train")


@dataclass
class Interactions:
    users: list[str]            # user labels; position = user code
    items: list[str]            # the catalogue: item labels; position = item code
    user: np.ndarray            # one row per positive (user, item) pair, deduplicated
    item: np.ndarray
    time: np.ndarray            # float order key (time column, else row order)
    seen_user: np.ndarray       # every interaction of the log (any rating), for "not interacted with"
    seen_item: np.ndarray
    item_frame: pd.DataFrame    # one row per catalogue item: the item column, its features and title
    user_frame: pd.DataFrame    # one row per user: the user column and its features
    notes: list[str] = field(default_factory=list)


def _labels(values: pd.Series) -> pd.Series:
    # IDs of mixed types (1, 1.0, "1") are the same ID: compare their canonical text.
    return values.map(label).astype(str)


def _order_key(values: pd.Series, name: str, source: str | None) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().sum() >= values.notna().sum():
        return numbers.to_numpy(dtype=np.float64)
    times = pd.to_datetime(values, errors="coerce", utc=True)
    bad = values.notna() & times.isna()
    if bad.any():
        raise LaminaError(where(source, f"time column '{name}': {values[bad].iloc[0]!r} is neither a number nor a date"))
    return (times - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)


def prepare(frame: pd.DataFrame, rec: RecommendationConfig, source: str | None = None) -> Interactions:
    wanted = [rec.user, rec.item, rec.rating, rec.time, rec.title,
              *[s.name for s in rec.user_features], *[s.name for s in rec.item_features]]
    missing = [c for c in wanted if c is not None and c not in frame.columns]
    if missing:
        shown = ", ".join(repr(c) for c in list(frame.columns)[:10])
        raise LaminaError(where(source, f"column {missing[0]!r} not found; the file has {shown}; fix the file or the config"))
    notes: list[str] = []
    keep = frame[rec.user].notna() & frame[rec.item].notna()
    if not keep.all():
        notes.append(f"{int((~keep).sum())} row(s) without a user or item left out")
    frame = frame[keep].reset_index(drop=True)
    if len(frame) == 0:
        raise LaminaError(where(source, f"no row has both a user ('{rec.user}') and an item ('{rec.item}')"))
    users_text, items_text = _labels(frame[rec.user]), _labels(frame[rec.item])
    order = _order_key(frame[rec.time], rec.time, source) if rec.time else np.arange(len(frame), dtype=np.float64)
    order = np.where(np.isnan(order), -np.inf, order)

    items = sorted(items_text.unique())
    item_code = pd.Series(np.arange(len(items)), index=items)
    users = sorted(users_text.unique())
    user_code = pd.Series(np.arange(len(users)), index=users)
    u_all = user_code[users_text].to_numpy()
    i_all = item_code[items_text].to_numpy()

    positive = np.ones(len(frame), dtype=bool)
    if rec.rating:
        ratings = pd.to_numeric(frame[rec.rating], errors="coerce")
        bad = frame[rec.rating].notna() & ratings.isna()
        if bad.any():
            raise LaminaError(where(source, f"rating column '{rec.rating}': {frame[rec.rating][bad].iloc[0]!r} is not a number"))
        if rec.min_rating is not None:
            positive = (ratings >= rec.min_rating).to_numpy()
            notes.append(f"{int(positive.sum())} of {len(frame)} interactions rated ≥ {rec.min_rating:g} are positives")
    log_pairs = pd.DataFrame({"u": u_all, "i": i_all, "t": order, "p": positive})
    # Duplicates: the same user and item more than once count once, at their latest time.
    pairs = log_pairs[log_pairs["p"]].sort_values("t", kind="stable").drop_duplicates(["u", "i"], keep="last")
    duplicates = int(positive.sum()) - len(pairs)
    if duplicates:
        notes.append(f"{duplicates} duplicate user–item positive(s) counted once")
    if len(pairs) == 0:
        raise LaminaError(where(source, "no positive interactions; lower recommendation.min_rating"))
    seen = log_pairs.drop_duplicates(["u", "i"])

    last = frame.assign(_i=i_all, _t=order).sort_values("_t", kind="stable").drop_duplicates("_i", keep="last")
    item_cols = [rec.item, *[s.name for s in rec.item_features], *([rec.title] if rec.title else [])]
    item_frame = last.set_index("_i").reindex(np.arange(len(items)))[list(dict.fromkeys(item_cols))].reset_index(drop=True)
    item_frame[rec.item] = items
    lastu = frame.assign(_u=u_all, _t=order).sort_values("_t", kind="stable").drop_duplicates("_u", keep="last")
    user_cols = list(dict.fromkeys([rec.user, *[s.name for s in rec.user_features]]))
    user_frame = lastu.set_index("_u").reindex(np.arange(len(users)))[user_cols].reset_index(drop=True)
    user_frame[rec.user] = users
    return Interactions(users, items, pairs["u"].to_numpy(), pairs["i"].to_numpy(), pairs["t"].to_numpy(),
                        seen["u"].to_numpy(), seen["i"].to_numpy(), item_frame, user_frame, notes)


def split_per_user(user: np.ndarray, time: np.ndarray | None, seed: int = 42) -> dict[str, np.ndarray]:
    """Row indices of train / validation / test: per user the last row is test (≥ 2 rows), the one before
    validation (≥ 3 rows). ``time`` orders a user's rows (ties keep row order); without it the order is random."""
    n = len(user)
    rng = np.random.default_rng(seed)
    key = time if time is not None else rng.permutation(n).astype(np.float64)
    order = np.lexsort((np.arange(n), key, user))  # by user, then time, then row
    sorted_user = user[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_user)) + 1]
    counts = np.diff(np.r_[starts, n])
    count = np.repeat(counts, counts)
    from_end = np.repeat(starts + counts, counts) - 1 - np.arange(n)  # 0 for a user's last row
    test = (from_end == 0) & (count >= 2)
    valid = (from_end == 1) & (count >= 3)
    return {"train": np.sort(order[~test & ~valid]), "validation": np.sort(order[valid]), "test": np.sort(order[test])}
