"""Reading tables from files and splitting them, on the breast cancer data set written in every format."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from lamina.data.read import read_table
from lamina.data.split import SPLITS, files_split, split_frame
from lamina.errors import LaminaError

FRACTIONS = (0.7, 0.15, 0.15)


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


def write(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` in the format its file name says."""
    name = path.name.lower().removesuffix(".gz")
    compression = "gzip" if path.name.endswith(".gz") else None
    if name.endswith(".csv"):
        df.to_csv(path, index=False, compression=compression)
    elif name.endswith((".tsv", ".tab")):
        df.to_csv(path, index=False, sep="\t", compression=compression)
    elif name.endswith((".parquet", ".pq")):
        df.to_parquet(path, index=False)
    elif name.endswith((".jsonl", ".ndjson", ".json")):
        df.to_json(path, orient="records", lines=True, compression=compression)
    else:
        raise AssertionError(path)
    return path


def error_for(path: Path | str, **kwargs: object) -> str:
    """Read ``path``, expect a LaminaError, check it is one line naming the file, and return its message."""
    with pytest.raises(LaminaError) as caught:
        read_table(path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


# --- reading -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filename",
    ["data.csv", "data.tsv", "data.tab", "data.parquet", "data.pq", "data.jsonl", "data.ndjson", "data.json",
     "data.csv.gz", "data.tsv.gz", "data.jsonl.gz", "DATA.CSV"],
)
def test_read_round_trips_every_format(cancer: pd.DataFrame, tmp_path: Path, filename: str) -> None:
    frame = read_table(write(cancer, tmp_path / filename))
    assert isinstance(frame.index, pd.RangeIndex) and frame.index.equals(pd.RangeIndex(len(cancer)))
    assert list(frame.columns) == list(cancer.columns)
    pd.testing.assert_frame_equal(frame, cancer, check_dtype=False)
    assert frame["target"].dtype.kind == "i"


def test_read_json_array_of_records(cancer: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    cancer.head(20).to_json(path, orient="records", indent=2)
    pd.testing.assert_frame_equal(read_table(path), cancer.head(20), check_dtype=False)


def test_read_explicit_format_ignores_extension(cancer: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    cancer.to_csv(path, index=False, sep="\t")
    assert read_table(path, format="tsv").shape == cancer.shape
    assert read_table(str(path), format="TSV").shape == cancer.shape


def test_read_gzip_detected_by_content(cancer: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(gzip.compress(cancer.to_csv(index=False).encode()))
    assert read_table(path).shape == cancer.shape


def test_read_keeps_strings_and_missing_values(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text("name,age,city\nann,31,Paris\nbob,,\n\"smith, jr\",40,Oslo\n")
    frame = read_table(path)
    assert frame["name"].tolist() == ["ann", "bob", "smith, jr"]
    assert frame["age"].isna().tolist() == [False, True, False]
    assert frame["city"].isna().tolist() == [False, True, False]


def test_read_parquet_named_index_becomes_column(cancer: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "indexed.parquet"
    cancer.head(5).rename_axis("patient_id").to_parquet(path)
    frame = read_table(path)
    assert frame.columns[0] == "patient_id"
    assert frame["patient_id"].tolist() == [0, 1, 2, 3, 4]
    assert frame.index.equals(pd.RangeIndex(5))


def test_read_dataframe_is_copied_and_cleaned(cancer: pd.DataFrame) -> None:
    source = cancer.head(10).set_axis(range(100, 110)).rename(columns={"target": 7})
    frame = read_table(source)
    assert frame.index.equals(pd.RangeIndex(10))
    assert "7" in frame.columns and all(isinstance(c, str) for c in frame.columns)
    frame.iloc[0, 0] = -1.0
    assert source.iloc[0, 0] != -1.0
    assert source.index[0] == 100 and 7 in source.columns


def test_read_dataframe_duplicate_names_after_str() -> None:
    with pytest.raises(LaminaError, match="'1'"):
        read_table(pd.DataFrame([[1, 2]], columns=[1, "1"]))


def test_error_missing_file(tmp_path: Path) -> None:
    message = error_for(tmp_path / "nope.csv")
    assert "no such file" in message and "check the path" in message


def test_error_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert "directory" in error_for(folder)


def test_error_empty_file(tmp_path: Path) -> None:
    for name in ("empty.csv", "empty.parquet", "empty.jsonl"):
        (tmp_path / name).write_bytes(b"")
        assert "empty (0 bytes)" in error_for(tmp_path / name)


def test_error_header_only(cancer: pd.DataFrame, tmp_path: Path) -> None:
    assert "only a header row (31 columns) and no data rows" in error_for(write(cancer.head(0), tmp_path / "h.csv"))
    assert "no rows" in error_for(write(cancer.head(0), tmp_path / "h.parquet"))


def test_error_blank_text_files(tmp_path: Path) -> None:
    (tmp_path / "blank.csv").write_text("\n\n")
    assert "no header" in error_for(tmp_path / "blank.csv")
    (tmp_path / "blank.jsonl").write_text("\n  \n")
    assert "blank" in error_for(tmp_path / "blank.jsonl")


def test_error_csv_wrong_field_count_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n3,4\n5,6,7\n")
    message = error_for(path)
    assert "line 4 has 3 fields, the header has 2" in message


def test_error_csv_unclosed_quote_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text('a,b\n1,2\n3,"4\n5,6\n')
    assert "line 3" in error_for(path)


def test_error_csv_every_row_longer_than_header(tmp_path: Path) -> None:
    # pandas would silently turn the first column into the index, losing the header alignment.
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2,3\n4,5,6\n")
    assert "more fields than the header" in error_for(path)


def test_error_csv_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("name,city\nJosé,Zürich\n".encode("latin-1"))
    assert "not UTF-8 text (byte 0xe9" in error_for(path)


def test_error_corrupt_gzip(cancer: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "data.csv.gz"
    data = gzip.compress(cancer.to_csv(index=False).encode())
    path.write_bytes(data[: len(data) // 2])
    assert "gzip" in error_for(path)


def test_error_unknown_extension(tmp_path: Path) -> None:
    for name in ("data.xlsx", "data", "data.parquet.gz"):
        (tmp_path / name).write_text("a,b\n1,2\n")
        message = error_for(tmp_path / name)
        assert "unknown file extension" in message and "data.format" in message and "parquet (.parquet" in message


def test_error_unknown_format_value(cancer: pd.DataFrame, tmp_path: Path) -> None:
    message = error_for(write(cancer, tmp_path / "data.csv"), format="excel")
    assert "'excel'" in message and "csv" in message


def test_error_corrupt_parquet(cancer: pd.DataFrame, tmp_path: Path) -> None:
    path = write(cancer, tmp_path / "data.parquet")
    path.write_bytes(path.read_bytes()[:1000])
    assert "not a valid Parquet file" in error_for(path)
    csv_as_parquet = tmp_path / "really_csv.parquet"
    csv_as_parquet.write_text("a,b\n1,2\n")
    assert "not a valid Parquet file" in error_for(csv_as_parquet)


def test_error_invalid_json_line(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3,\n')
    assert "line 3 is not valid JSON" in error_for(path)
    path.write_text('{"a": 1}\n[1, 2]\n')
    assert "line 2 is a JSON list, not an object" in error_for(path)


def test_error_invalid_json_document(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text('[\n  {"a": 1},\n  {"a": 2,}\n]\n')
    assert "line 3" in error_for(path)
    path.write_text('[{"a": 1}, 5]')
    assert "item 2" in error_for(path)
    path.write_text("[]")
    assert "no columns" in error_for(path)
    path.write_text('{"a": 1,\n "b": 2}\n')
    assert "holds one JSON dict, not an array of objects" in error_for(path)
    path.write_text('{"a": 1}\n{"a": 2\n')
    assert "line 2 is not valid JSON" in error_for(path)


def test_error_duplicate_columns(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("age,name,age,city,city\n1,a,2,x,y\n")
    message = error_for(path)
    assert "duplicate column names 'age', 'city'" in message
    jsonl = tmp_path / "dup.jsonl"
    jsonl.write_text(json.dumps({"a": 1}) + '\n{"a": 1, "a": 2}\n')
    assert "line 2 repeats the key 'a'" in error_for(jsonl)


def test_mangled_looking_names_are_not_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("x,x.1,,\n1,2,3,4\n")
    assert list(read_table(path).columns) == ["x", "x.1", "Unnamed: 2", "Unnamed: 3"]


# --- splitting ---------------------------------------------------------------------------------------------------


def assert_partition(df: pd.DataFrame, parts: dict[str, pd.DataFrame]) -> None:
    assert set(parts) == set(SPLITS)
    indexes = [set(parts[name].index) for name in SPLITS]
    assert sum(len(i) for i in indexes) == len(df)
    assert set().union(*indexes) == set(df.index)
    for name in SPLITS:
        assert list(parts[name].columns) == list(df.columns)
        pd.testing.assert_frame_equal(parts[name], df.loc[parts[name].index])


def test_random_split_sizes_and_partition(cancer: pd.DataFrame) -> None:
    parts = split_frame(cancer, "random", FRACTIONS, seed=1)
    assert {k: len(v) for k, v in parts.items()} == {"train": 399, "validation": 85, "test": 85}
    assert_partition(cancer, parts)
    # Rows are shuffled into splits, not cut in file order.
    assert parts["test"].index.max() > 400 and parts["test"].index.min() < 100


def test_random_split_keeps_original_index(cancer: pd.DataFrame) -> None:
    shifted = cancer.set_axis(cancer.index + 1000)
    parts = split_frame(shifted, "random", FRACTIONS, seed=3)
    assert_partition(shifted, parts)
    assert min(part.index.min() for part in parts.values()) == 1000


def test_random_split_is_deterministic(cancer: pd.DataFrame) -> None:
    first = split_frame(cancer, "random", FRACTIONS, seed=42)
    again = split_frame(cancer, "random", FRACTIONS, seed=42)
    other = split_frame(cancer, "random", FRACTIONS, seed=43)
    for name in SPLITS:
        assert first[name].index.equals(again[name].index)
    assert not first["test"].index.equals(other["test"].index)


def test_zero_fractions_give_empty_frames(cancer: pd.DataFrame) -> None:
    parts = split_frame(cancer, "random", (0.8, 0.2, 0.0), seed=0)
    assert len(parts["test"]) == 0 and list(parts["test"].columns) == list(cancer.columns)
    assert (len(parts["train"]), len(parts["validation"])) == (455, 114)
    only_train = split_frame(cancer, "random", (1.0, 0.0, 0.0), seed=0)
    assert len(only_train["train"]) == len(cancer) and len(only_train["validation"]) == 0


def test_tiny_frames(cancer: pd.DataFrame) -> None:
    parts = split_frame(cancer.head(3), "random", FRACTIONS, seed=0)
    assert [len(parts[name]) for name in SPLITS] == [1, 1, 1]
    parts = split_frame(cancer.head(2), "random", FRACTIONS, seed=0)
    assert [len(parts[name]) for name in SPLITS] == [1, 1, 0]
    with pytest.raises(LaminaError, match="only 1 rows.*at least 2 rows"):
        split_frame(cancer.head(1), "random", FRACTIONS, seed=0)
    assert len(split_frame(cancer.head(1), "random", (1, 0, 0), seed=0)["train"]) == 1


@pytest.mark.parametrize(
    "fractions",
    [(0.5, 0.3, 0.3), (0.0, 0.5, 0.5), (1.1, -0.1, 0.0), (0.5, 0.5), (0.5, "a", 0.5), (float("nan"), 0.5, 0.5), 0.7],
)
def test_bad_fractions(cancer: pd.DataFrame, fractions: object) -> None:
    with pytest.raises(LaminaError, match="fractions") as caught:
        split_frame(cancer, "random", fractions, seed=0, source="config.yaml")  # type: ignore[arg-type]
    assert str(caught.value).startswith("config.yaml: ") and "\n" not in str(caught.value)


def test_fractions_tolerance(cancer: pd.DataFrame) -> None:
    parts = split_frame(cancer, "random", (0.7, 0.2, 0.1 + 5e-7), seed=0)
    assert sum(len(p) for p in parts.values()) == len(cancer)


def test_unknown_method(cancer: pd.DataFrame) -> None:
    with pytest.raises(LaminaError, match="unknown data.split.method 'kfold'"):
        split_frame(cancer, "kfold", FRACTIONS, seed=0)


def test_stratified_keeps_class_ratios(cancer: pd.DataFrame) -> None:
    parts = split_frame(cancer, "stratified", FRACTIONS, seed=7, stratify_on="target")
    assert_partition(cancer, parts)
    assert [len(parts[name]) for name in SPLITS] == [399, 85, 85]
    ratio = cancer["target"].mean()
    for part in parts.values():
        assert abs(part["target"].sum() - ratio * len(part)) <= 1.5
    again = split_frame(cancer, "stratified", FRACTIONS, seed=7, stratify_on="target")
    assert all(parts[name].index.equals(again[name].index) for name in SPLITS)


def test_stratified_with_missing_and_string_labels(cancer: pd.DataFrame) -> None:
    df = cancer.assign(label=cancer["target"].map({0: "malignant", 1: "benign"}).astype(object))
    df.loc[df.index[:30], "label"] = np.nan
    parts = split_frame(df, "stratified", FRACTIONS, seed=0, stratify_on="label")
    assert_partition(df, parts)
    for part in parts.values():
        assert abs(part["label"].isna().sum() - 30 / len(df) * len(part)) <= 1.5


def test_stratified_falls_back_when_a_class_is_too_small(cancer: pd.DataFrame, caplog: pytest.LogCaptureFixture) -> None:
    df = cancer.assign(target=cancer["target"].where(cancer.index != 5, 2))
    with caplog.at_level(logging.WARNING, logger="lamina"):
        parts = split_frame(df, "stratified", FRACTIONS, seed=0, stratify_on="target", source="cancer.csv")
    assert_partition(df, parts)
    assert [len(parts[name]) for name in SPLITS] == [399, 85, 85]
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "'target'" in message and "class 2" in message and "random split" in message
    # The fallback is the plain random split with the same seed.
    assert parts["test"].index.equals(split_frame(df, "random", FRACTIONS, seed=0)["test"].index)


def test_stratified_on_continuous_column_falls_back(cancer: pd.DataFrame, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lamina"):
        parts = split_frame(cancer, "stratified", FRACTIONS, seed=0, stratify_on="mean radius")
    assert_partition(cancer, parts)
    assert "'mean radius'" in caplog.text


def test_stratified_needs_a_present_column(cancer: pd.DataFrame) -> None:
    with pytest.raises(LaminaError, match="'diagnosis'"):
        split_frame(cancer, "stratified", FRACTIONS, seed=0, stratify_on="diagnosis")
    with pytest.raises(LaminaError, match="stratify"):
        split_frame(cancer, "stratified", FRACTIONS, seed=0)


def test_column_split(cancer: pd.DataFrame) -> None:
    spellings = ["train", " Train", "TRAIN ", "val", "Valid", "dev", "validation", "test", "Test "]
    df = cancer.assign(fold=[spellings[i % len(spellings)] for i in range(len(cancer))])
    parts = split_frame(df, "column", FRACTIONS, seed=0, column="fold")
    assert all("fold" not in part.columns for part in parts.values())
    expected = df["fold"].str.strip().str.lower().replace({"val": "validation", "valid": "validation",
                                                           "dev": "validation"})
    for name in SPLITS:
        assert parts[name].index.equals(df.index[expected == name])
    assert_partition(df.drop(columns="fold"), parts)
    assert [len(parts[name]) for name in SPLITS] == [191, 252, 126]


def test_column_split_without_validation_rows(cancer: pd.DataFrame) -> None:
    df = cancer.assign(fold=np.where(cancer.index < 500, "train", "test"))
    parts = split_frame(df, "column", FRACTIONS, seed=0, column="fold")
    assert len(parts["validation"]) == 0 and list(parts["validation"].columns) == list(cancer.columns)
    assert len(parts["test"]) == 69


def test_column_split_bad_value_names_row(cancer: pd.DataFrame) -> None:
    df = cancer.assign(fold="train")
    df.loc[41, "fold"] = "tset"
    with pytest.raises(LaminaError) as caught:
        split_frame(df, "column", FRACTIONS, seed=0, column="fold", source="cancer.csv")
    message = str(caught.value)
    assert message.startswith("cancer.csv: ") and "'fold'" in message and "row 42" in message
    assert "'tset'" in message and "validation" in message and "\n" not in message
    df.loc[41, "fold"] = np.nan
    with pytest.raises(LaminaError, match="row 42: an empty value"):
        split_frame(df, "column", FRACTIONS, seed=0, column="fold")


def test_column_split_missing_column_or_train(cancer: pd.DataFrame) -> None:
    with pytest.raises(LaminaError, match="split column 'fold' is missing"):
        split_frame(cancer, "column", FRACTIONS, seed=0, column="fold")
    with pytest.raises(LaminaError, match="no rows as train"):
        split_frame(cancer.assign(fold="test"), "column", FRACTIONS, seed=0, column="fold")


def test_files_split(cancer: pd.DataFrame) -> None:
    train, validation = cancer.iloc[:400].reset_index(drop=True), cancer.iloc[400:].reset_index(drop=True)
    reordered = validation[list(reversed(validation.columns))].assign(extra=1)
    parts = files_split({"train": train, "validation": reordered})
    assert parts["train"] is train
    assert list(parts["validation"].columns) == list(cancer.columns)
    pd.testing.assert_frame_equal(parts["validation"], validation)
    assert len(parts["test"]) == 0 and list(parts["test"].columns) == list(cancer.columns)


def test_files_split_missing_columns(cancer: pd.DataFrame) -> None:
    with pytest.raises(LaminaError) as caught:
        files_split({"train": cancer, "test": cancer.drop(columns=["target", "mean area"])})
    message = str(caught.value)
    assert message.startswith("the data.test file") and "'mean area'" in message and "'target'" in message
    with pytest.raises(LaminaError, match="train"):
        files_split({"validation": cancer})


def test_read_then_split_end_to_end(cancer: pd.DataFrame, tmp_path: Path) -> None:
    frame = read_table(write(cancer, tmp_path / "cancer.parquet"))
    parts = split_frame(frame, "stratified", (0.6, 0.2, 0.2), seed=11, stratify_on="target")
    assert_partition(frame, parts)
    assert [len(parts[name]) for name in SPLITS] == [341, 114, 114]
