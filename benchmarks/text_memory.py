"""Peak memory of scoring the 3,600 training reviews in one prediction call (``run_network`` passes up to 4,096 rows
at a time): the CNN encoder run whole (as before chunking), the CNN in chunks, and the hashed encoder.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/text_memory.py

Each case runs in its own process; the figure is the growth of peak RSS (``ru_maxrss``) during the forward pass.
The networks are untrained: memory and time do not depend on the weights.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = [("cnn", "whole"), ("cnn", "chunked"), ("hashed", "chunked")]


def case(encoder: str, mode: str) -> dict:
    import pandas as pd
    import torch

    import lamina.inputs.text as text
    import lamina.inputs.text_encoders as encoders

    torch.set_num_threads(1)
    if mode == "whole":
        encoders.EVAL_TOKENS = 1 << 40  # one forward over the whole chunk, as before
    frame = pd.read_csv(ROOT / "examples" / "reviews" / "train.csv")
    t = text.TextInput("review", text.TextOptions(encoder=encoder))
    t.fit(frame["review"])
    ids = t.transform(frame["review"])
    net = t.encoder().eval()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    with torch.inference_mode():
        net(ids)
    return {"encoder": encoder, "mode": mode, "ids": list(ids.shape), "dtype": str(ids.dtype),
            "ids_mb": round(ids.numel() * ids.element_size() / 2**20, 1),
            "peak_growth_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base),
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    if len(sys.argv) == 3:
        print(json.dumps(case(sys.argv[1], sys.argv[2])))
        return
    if not (ROOT / "examples" / "reviews" / "train.csv").exists():
        subprocess.run([sys.executable, str(ROOT / "examples" / "reviews" / "make_data.py")], check=True)
    for encoder, mode in CASES:
        done = subprocess.run([sys.executable, __file__, encoder, mode], capture_output=True, text=True, check=True)
        print(done.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
