"""Write English→French sentence pairs beside this file, as tab-separated ``english`` / ``french`` columns.

* ``pairs.tsv`` (default): numbers written out in words by the `num2words` package, which follows each language's
  real rules — 3,482 → "three thousand, four hundred and eighty-two" → "trois mille quatre cent quatre-vingt-deux".
  Every number is distinct, so the validation and test numbers are never seen in training.
* ``gettext.tsv`` (``--gettext``): real human translations of software messages, from the French gettext catalogs
  installed on Debian machines (/usr/share/locale/fr/LC_MESSAGES/*.mo, read with the standard ``gettext`` module),
  with ``%s``-style placeholders, keyboard accelerators and markup stripped.

    python examples/translation/make_data.py [--rows 12000] [--seed 0] [--gettext] [--out DIR]

Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import gettext
import random
import re
from pathlib import Path

import pandas as pd

here = Path(__file__).parent
LOCALE = Path("/usr/share/locale/fr/LC_MESSAGES")


def numbers(rows: int, seed: int) -> pd.DataFrame:
    """``rows`` distinct numbers below a million, in words in both languages."""
    from num2words import num2words

    rng = random.Random(seed)
    # Every number below 1,000 (the words larger numbers are made of), the rest drawn from 1,000 to 999,999.
    small = list(range(min(rows, 1000)))
    picked = small + rng.sample(range(1000, 1_000_000), max(rows - len(small), 0))
    rng.shuffle(picked)
    return pd.DataFrame({"english": [num2words(n, lang="en") for n in picked],
                         "french": [num2words(n, lang="fr") for n in picked]})


PLACEHOLDER = re.compile(r"%(\d+\$)?[-+ #0]*\d*(\.\d+)?(hh|h|ll|l|L|q|j|z|t)?[diouxXeEfFgGaAcspn%]|\{[^}]*\}|<[^>]+>")

EMPTY_QUOTES = re.compile(r"\"\s*\"|«\s*»|'\s*'|“\s*”|\(\s*\)")


def clean(text: str) -> str:
    text = PLACEHOLDER.sub(" ", text).replace("_", "").replace("&", "")
    text = EMPTY_QUOTES.sub(" ", text)  # quotes that held a placeholder
    return re.sub(r"\s+", " ", text).strip(" :.,;")


def catalogs(max_words: int = 12) -> pd.DataFrame:
    """Message pairs from every readable French .mo catalog: one-line messages of 2 to ``max_words`` words."""
    pairs: dict[str, str] = {}
    for path in sorted(LOCALE.glob("*.mo")):
        try:
            with path.open("rb") as handle:
                catalog = gettext.GNUTranslations(handle)._catalog  # the parsed msgid → msgstr table
        except Exception:  # a malformed catalog is skipped, not fatal
            continue
        for key, value in catalog.items():
            if not isinstance(key, str) or not key or "\n" in key or not isinstance(value, str):
                continue
            english, french = clean(key), clean(value)
            if english and french and english != french and 2 <= len(english.split()) <= max_words \
                    and len(french.split()) <= 2 * max_words:
                pairs.setdefault(english, french)
    return pd.DataFrame({"english": list(pairs), "french": list(pairs.values())})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=12000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gettext", action="store_true", help="write gettext.tsv from the installed catalogs")
    parser.add_argument("--out", type=Path, default=here)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    frame = catalogs() if args.gettext else numbers(args.rows, args.seed)
    path = args.out / ("gettext.tsv" if args.gettext else "pairs.tsv")
    frame.to_csv(path, sep="\t", index=False)
    print(f"wrote {path} ({len(frame)} pairs)")


if __name__ == "__main__":
    main()
