"""Write BasicMotions (accelerometer + gyroscope, 4 activities, 6 channels × 100 readings) beside this file.

motion.parquet: ``motion`` (6 channel lists per row), ``activity`` (Standing / Running / Walking / Badminton) and
``split``: the official 40 test rows are ``test``; of the official 40 training rows, 2 per activity (the last ones
in file order) are ``validation``, the other 32 ``train``. Also writes config.yaml (data.split method: column).

The data ships inside the PyPI package `aeon` (pip install aeon); nothing is downloaded. aeon itself is not
imported (it pulls numba): its ``.ts`` files are found on disk and parsed by lamina.data.ts_format.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lamina.data.ts_format import aeon_folder, read_ts

HERE = Path(__file__).parent
VALIDATION_PER_CLASS = 2


def frame() -> pd.DataFrame:
    folder = aeon_folder("BasicMotions")
    train, test = (read_ts(folder / f"BasicMotions_{part}.ts", "motion", "activity") for part in ("TRAIN", "TEST"))
    train["split"] = "train"
    # Deterministic: the last rows of each activity in file order validate.
    last = train.groupby("activity").cumcount(ascending=False) < VALIDATION_PER_CLASS
    train.loc[last, "split"] = "validation"
    test["split"] = "test"
    return pd.concat([train, test], ignore_index=True)


CONFIG = """\
# BasicMotions: which activity (standing, walking, running, badminton) from a smartwatch's 6 sensor channels.
name: basic_motions
data:
  path: motion.parquet
  split: {method: column, column: split}   # the official train/test; validation carved from train
inputs:
  - {name: motion, type: timeseries, options: {encoder: cnn}}   # or gru / transformer
outputs:
  - {name: activity, type: category}
hidden: {depth: 1, width: 64, dropout: 0.1}
trainer: {epochs: 60, batch_size: 8, learning_rate: 0.003, early_stopping: {patience: 15}, seed: 42}
"""

if __name__ == "__main__":
    data = frame()
    data.to_parquet(HERE / "motion.parquet", index=False)
    (HERE / "config.yaml").write_text(CONFIG, encoding="utf-8")
    print(f"wrote {HERE / 'motion.parquet'} ({len(data)} rows: {data['split'].value_counts().to_dict()}) and config.yaml")
