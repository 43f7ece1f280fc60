"""Write Debian's fortune cookies as a 40-topic text task beside this file: train.csv, validation.csv, test.csv.

Each text comes from one file of the installed ``fortunes`` package (/usr/share/games/fortunes; texts separated by
lines holding only ``%``); its topic is the file's name. Files with fewer than 20 texts are left out (ascii-art,
pratchett, translate-me), which leaves 40 topics, and a text found more than once (83 are, some under two topics)
is left out whole, so no test text is also a training text. Stratified 70 / 10 / 20 split, seed 42. Install the data with
``apt-get install fortunes`` (Debian / Ubuntu): nothing is downloaded here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

FOLDER = Path("/usr/share/games/fortunes")
MIN_TEXTS = 20


def read_fortunes(folder: Path = FOLDER) -> pd.DataFrame:
    """One row per fortune: ``text`` and ``topic`` (the file it came from), in file and text order."""
    rows = []
    for path in sorted(folder.iterdir()):
        if path.suffix in (".dat", ".u8") or path.is_dir() or path.is_symlink():
            continue
        body = path.read_text(encoding="utf-8", errors="replace")
        texts = [t.strip("\n") for t in body.replace("\r\n", "\n").split("\n%\n")]
        texts = [t.rstrip("%").strip("\n") for t in texts if t.strip().strip("%").strip()]
        if len(texts) >= MIN_TEXTS:
            rows.extend({"text": t, "topic": path.name} for t in texts)
    frame = pd.DataFrame(rows, columns=["text", "topic"])
    return frame[~frame["text"].duplicated(keep=False)].reset_index(drop=True)


def main() -> None:
    if not FOLDER.is_dir():
        sys.exit(f"{FOLDER} not found: install Debian's fortunes package (apt-get install fortunes)")
    here = Path(__file__).parent
    frame = read_fortunes()
    train, test = train_test_split(frame, test_size=0.2, stratify=frame["topic"], random_state=42)
    train, validation = train_test_split(train, test_size=0.125, stratify=train["topic"], random_state=42)
    for name, part in {"train": train, "validation": validation, "test": test}.items():
        part.to_csv(here / f"{name}.csv", index=False)
        print(f"wrote {here / f'{name}.csv'} ({len(part)} rows, {part['topic'].nunique()} topics)")


if __name__ == "__main__":
    main()
