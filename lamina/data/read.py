"""Read a table from a file (CSV, TSV, Parquet, JSON lines, JSON) or a DataFrame into a clean DataFrame."""

from __future__ import annotations

import gzip
import json
import os
import re
import warnings
import zlib
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from lamina.data.flows import read_flows
from lamina.data.detection import is_coco, is_yolo, read_coco, read_yolo
from lamina.data.folders import read_folder
from lamina.data.pcap import CAPTURE_EXTENSIONS, capture_format
from lamina.errors import LaminaError, where

FORMATS = ("csv", "tsv", "parquet", "jsonl", "json")
# What data.format in the config accepts; "json" is only reached through the .json extension there.
_CONFIG_FORMATS = "csv, tsv, parquet, jsonl"

# Suffix (lower case, without .gz) -> format. Only text formats may also be gzip-compressed.
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
_KNOWN = (
    "csv (.csv), tsv (.tsv, .tab), parquet (.parquet, .pq), jsonl (.jsonl, .ndjson), json (.json); "
    "csv, tsv, jsonl and json may also end in .gz; packet captures (pcap, pcapng) are read as flows"
)
_GZIP_MAGIC = b"\x1f\x8b"


def read_table(source: str | os.PathLike | pd.DataFrame, format: str = "auto") -> pd.DataFrame:
    """Read ``source`` into a DataFrame with a RangeIndex 0..n-1 and str column names.

    A directory is read as a folder of images: columns ``image`` (absolute paths) and ``label`` (the subfolder).
    ``format`` is one of "auto" (from the file extension), "csv", "tsv", "parquet", "jsonl" or "json".
    Every problem with the file raises a one-line ``LaminaError`` that names it.
    """
    if isinstance(source, pd.DataFrame):
        return _clean(source.copy(), None)
    name = os.fspath(source)
    path = Path(name)
    if path.is_dir() and is_yolo(path):  # a detection set: images/ and labels/*.txt
        return _clean(read_yolo(path), name)
    if path.is_dir():  # a folder of images, one subfolder per class
        return _clean(read_folder(path), name)
    check_file(name, path)
    if format.strip().lower() == "auto" and (capture_format(path) or path.suffix.lower() in CAPTURE_EXTENSIONS):
        # a packet capture, told by its magic bytes (a foreign file named .pcap gets read_packets' one line)
        return _clean(read_flows(name), name)
    fmt = _resolve_format(name, format)
    if fmt == "parquet":
        df = _read_parquet(name, path)
        empty = f"has {_plural(df.shape[1], 'column')} but no rows; write a Parquet file with data"
    elif fmt in ("csv", "tsv"):
        df = _read_csv(name, path, "," if fmt == "csv" else "\t", fmt)
        empty = f"has only a header row ({_plural(df.shape[1], 'column')}) and no data rows; add data rows"
    elif fmt == "json" and (coco := _coco_document(path)) is not None:
        return _clean(read_coco(name, coco), name)
    else:
        df = _read_json(name, path, lines_only=fmt == "jsonl")
        empty = "has no records; write one JSON object per row"
    if df.shape[1] == 0:
        raise LaminaError(where(name, "has no columns; check the file contents and data.format"))
    if len(df) == 0:
        raise LaminaError(where(name, empty))
    return _clean(df, name)


def _resolve_format(name: str, format: str) -> str:
    fmt = format.strip().lower()
    if fmt != "auto":
        if fmt not in FORMATS:
            raise LaminaError(where(name, f"unknown data.format {format!r}; use one of auto, {_CONFIG_FORMATS}"))
        return fmt
    suffixes = [s.lower() for s in Path(name).suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    fmt = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if fmt is None or (compressed and fmt == "parquet"):
        ext = "".join(Path(name).suffixes[-2:] if compressed else Path(name).suffixes[-1:]) or "(none)"
        raise LaminaError(
            where(name, f"unknown file extension {ext}; known formats: {_KNOWN}; or set data.format to one of "
                  f"{_CONFIG_FORMATS}")
        )
    return fmt


def check_file(name: str, path: Path) -> None:
    if path.is_dir():
        raise LaminaError(where(name, "is a directory, not a file; point to a data file inside it"))
    if not path.exists():
        raise LaminaError(
            where(name, "no such file; check the path (relative paths in the config are resolved against the "
                  "folder of the config file)")
        )
    try:
        size = path.stat().st_size
        with path.open("rb"):
            pass
    except OSError as error:
        raise LaminaError(where(name, f"cannot open the file ({_one_line(error.strerror or error)}); check its "
                                "permissions")) from None
    if size == 0:
        raise LaminaError(where(name, "file is empty (0 bytes); write the data with a header row and data rows"))


def _coco_document(path: Path) -> dict[str, Any] | None:
    """The parsed file when it is one COCO detection document (images, annotations, categories), else None."""
    with path.open("rb") as handle:
        if not handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
            return None  # an array of records, or gzip
    try:
        data = json.loads(path.read_text("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if is_coco(data) else None


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def _read_csv(name: str, path: Path, sep: str, fmt: str) -> pd.DataFrame:
    compression = "gzip" if _is_gzip(path) else None
    kind = fmt.upper()
    try:
        with warnings.catch_warnings():
            # Rows with more fields than the header would otherwise be truncated with only a warning.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(path, sep=sep, compression=compression, encoding="utf-8", index_col=False,
                             low_memory=False)
    except pd.errors.EmptyDataError:
        raise LaminaError(where(name, f"file has no header and no rows; write the data as {kind} with a header "
                                "row")) from None
    except pd.errors.ParserWarning:
        raise LaminaError(where(name, f"some rows have more fields than the header has columns; check the "
                                f"delimiter and quoting, or add the missing column names (reading as {kind})")) from None
    except pd.errors.ParserError as error:
        raise LaminaError(where(name, f"cannot parse as {kind}{_csv_location(str(error))}; check the delimiter and "
                                "quoting, or set data.format")) from None
    except UnicodeDecodeError as error:
        raise LaminaError(where(name, f"not UTF-8 text (byte 0x{error.object[error.start]:02x} cannot be decoded); "
                                "re-save the file with UTF-8 encoding")) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise LaminaError(where(name, f"cannot decompress the gzip file ({_one_line(error)}); re-create it")) from None
    if _maybe_mangled(df.columns):
        header = pd.read_csv(path, sep=sep, compression=compression, encoding="utf-8", header=None, nrows=1,
                             dtype=str, keep_default_na=False)
        # Blank header cells are not duplicates: pandas names them 'Unnamed: N'.
        _check_duplicates(name, [c for c in header.iloc[0].tolist() if c != ""])
    return df


def _csv_location(message: str) -> str:
    """Turn pandas' tokenizer message into ' (line N: ...)'; its 'row' counts lines from 0."""
    if match := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message):
        expected, line, saw = match.groups()
        return f" (line {line} has {saw} fields, the header has {expected})"
    if match := re.search(r"EOF inside string starting at row (\d+)", message):
        return f" (a quoted field starting on line {int(match.group(1)) + 1} is never closed)"
    if match := re.search(r"line (\d+)", message):
        return f" (line {match.group(1)}: {_one_line(message.split('C error:')[-1])})"
    return f" ({_one_line(message.split('C error:')[-1])})"


def _maybe_mangled(columns: pd.Index) -> bool:
    """pandas renames a repeated header 'x' to 'x.1'; only then is it worth re-reading the raw header."""
    names = {str(c) for c in columns}
    matches = (re.fullmatch(r"(.*)\.\d+", n) for n in names)
    return any(m is not None and m.group(1) in names for m in matches)


def _read_parquet(name: str, path: Path) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path, engine="pyarrow")
    except (pa.ArrowException, OSError, ValueError) as error:
        reason = _one_line(error).replace(f"'{path}'", "").replace("Could not open Parquet input source : ", "")
        if isinstance(error, MemoryError) or "malloc of size" in reason:
            raise LaminaError(where(name, f"does not fit in memory ({reason[:120]}); with data.train set, "
                                    "data.streaming: true reads it a few row groups at a time")) from None
        raise LaminaError(where(name, f"not a valid Parquet file ({reason[:200]}); re-export it, or check the "
                                "extension and data.format")) from None
    # A named index was real data when it was written (e.g. an id); keep it as a column.
    if any(n is not None for n in df.index.names):
        df = df.reset_index()
    return df


def _read_json(name: str, path: Path, lines_only: bool) -> pd.DataFrame:
    opener: Any = gzip.open if _is_gzip(path) else open
    try:
        with opener(path, "rt", encoding="utf-8-sig") as handle:
            text = handle.read()
    except UnicodeDecodeError as error:
        raise LaminaError(where(name, f"not UTF-8 text (byte 0x{error.object[error.start]:02x} cannot be decoded); "
                                "re-save the file with UTF-8 encoding")) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise LaminaError(where(name, f"cannot decompress the gzip file ({_one_line(error)}); re-create it")) from None
    if not text.strip():
        raise LaminaError(where(name, "file has only blank lines; write one JSON object per line"))
    try:
        records = _parse_lines(name, text)
    except LaminaError:
        if lines_only:
            raise
        records = _parse_document(name, text)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _parse_lines(name: str, text: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as error:
            raise LaminaError(where(name, f"line {number} is not valid JSON ({error.msg} at column {error.colno}); "
                                    "write one JSON object per line")) from None
        except _DuplicateKey as error:
            raise LaminaError(where(name, f"line {number} repeats the key {error.args[0]!r}; column names must be "
                                    "unique")) from None
        if not isinstance(record, dict):
            raise LaminaError(where(name, f"line {number} is a JSON {type(record).__name__}, not an object; write "
                                    "one JSON object per line"))
        records.append(record)
    return records


def _parse_document(name: str, text: str) -> list[dict[str, Any]]:
    """Parse a whole .json document that is not JSON lines; it must be an array of objects."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as error:
        if not text.lstrip().startswith("["):
            # Not an array either: the JSON-lines error (with its line number) is the more useful one.
            _parse_lines(name, text)
        raise LaminaError(where(name, f"invalid JSON at line {error.lineno}, column {error.colno} ({error.msg}); "
                                "write a JSON array of objects or one object per line")) from None
    except _DuplicateKey as error:
        raise LaminaError(where(name, f"a record repeats the key {error.args[0]!r}; column names must be "
                                "unique")) from None
    if not isinstance(data, list):
        raise LaminaError(where(name, f"holds one JSON {type(data).__name__}, not an array of objects; write a JSON "
                                "array of records or one object per line"))
    bad = next((i for i, r in enumerate(data) if not isinstance(r, dict)), None)
    if bad is not None:
        raise LaminaError(where(name, f"item {bad + 1} of the JSON array is not an object; write a JSON array of "
                                "objects (records)"))
    return data


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _check_duplicates(name: str | None, columns: list[str]) -> None:
    seen: set[str] = set()
    repeated = [c for c in columns if c in seen or seen.add(c)]
    if repeated:
        names = ", ".join(repr(c) for c in dict.fromkeys(repeated))
        raise LaminaError(where(name, f"duplicate column names {names}; rename them so every column is unique"))


def _clean(df: pd.DataFrame, name: str | None) -> pd.DataFrame:
    columns = [str(c) for c in df.columns]
    _check_duplicates(name, columns)
    df.columns = columns
    return df.reset_index(drop=True)


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
