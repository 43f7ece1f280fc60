"""Write scikit-learn's breast cancer table (569 tumours, 30 measurements) as data.csv beside this file.

The data ships inside scikit-learn; this only gives it the shape a user's export would have: a `diagnosis` column
with the words malignant / benign.
"""

from pathlib import Path

from sklearn.datasets import load_breast_cancer

frame = load_breast_cancer(as_frame=True).frame
frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
out = Path(__file__).with_name("data.csv")
frame.to_csv(out, index=False)
print(f"wrote {out} ({len(frame)} rows)")
