"""The text output type: the target tokenizer, the decoder's cache and search, the loss, awkward targets, and an
end-to-end `lamina init` → train → predict of English→French number phrases (num2words) through the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import assert_ok, assert_user_error, read_yaml, run_cli, write_yaml
from lamina.outputs.text import SequenceLoss, TextOutput, TextOutputOptions
from lamina.outputs.text_decoder import BOS, EOS, PAD, TextDecoder

ROOT = Path(__file__).resolve().parents[1]
FRENCH = ["trois mille quatre cent quatre-vingt-deux", "deux cent un", "soixante-dix-sept", "mille", "neuf cent"] * 8


def fitted(texts: list[str] = FRENCH, **options) -> TextOutput:
    t = TextOutput("french", TextOutputOptions(**{"vocab_size": 300, **options}))
    t.fit(pd.Series(texts))
    return t


def test_targets_round_trip_through_the_tokenizer_even_with_unseen_characters():
    t = fitted()
    unseen = ["ça coûte dix-huit €", "日本語", "Zoë  naïve"]  # characters never in the training targets
    ids = t.transform(pd.Series(FRENCH[:5] + unseen))
    assert (ids[:, 0] == BOS).all()
    lengths = (ids != PAD).sum(1)
    assert all(ids[i, lengths[i] - 1] == EOS for i in range(len(ids)))
    assert 1 not in ids  # byte-level: no [UNK], ever
    generated = ids[:, 1:].numpy().astype(np.float32)  # as generation returns them: no [BOS], [EOS] then [PAD]
    assert t.texts(generated) == FRENCH[:5] + unseen  # byte-level decoding restores every byte, spaces too


def test_empty_missing_and_too_long_targets(caplog):
    t = fitted(max_length=6)
    ids = t.transform(pd.Series(["", None, "un " * 50]))
    assert ids[0, :2].tolist() == [BOS, EOS] and ids[1, :2].tolist() == [BOS, EOS]
    assert int((ids[2] != PAD).sum()) == 8  # [BOS] + 6 tokens + [EOS]
    assert "1 of 3 text(s) longer than 6 tokens truncated" in caplog.text
    with pytest.raises(Exception, match="every text in the training split is empty"):
        fitted(["", " ", None])


def test_loss_ignores_padding_and_matches_the_evaluation_nll():
    torch.manual_seed(0)
    target = torch.tensor([[BOS, 5, 6, EOS, PAD, PAD], [BOS, 7, EOS, PAD, PAD, PAD]])
    logits = torch.randn(2, 5, 20)
    loss = SequenceLoss(0.0)(logits, target)
    labels = target[:, 1:]
    nll = -torch.log_softmax(logits, -1).gather(2, labels.unsqueeze(2)).squeeze(2).masked_fill(labels == PAD, 0)
    assert torch.allclose(loss, nll.sum() / (labels != PAD).sum())
    assert torch.allclose(SequenceLoss(0.0)(nll, target), loss)  # evaluation's per-token NLL gives the same mean
    changed = logits.clone()
    changed[0, 4] += 100  # a padded position's logits must not matter
    assert torch.allclose(SequenceLoss(0.1)(changed, target), SequenceLoss(0.1)(logits, target))


def _decoder() -> tuple[TextDecoder, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    decoder = TextDecoder(vocabulary=30, dim=32, layers=2, heads=4, ff_dim=64, max_length=12, dropout=0.0).eval()
    memory = torch.randn(3, 5, 32)
    keep = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    return decoder, memory, keep


def test_cached_greedy_search_equals_recomputing_the_prefix():
    decoder, memory, keep = _decoder()
    with torch.no_grad():
        fast = decoder.generate(memory, keep, max_length=10)
        prefix = torch.full((3, 1), BOS)
        for _ in range(10):  # no cache: run the whole prefix through the teacher-forcing path each step
            logits = decoder(memory, keep, torch.cat([prefix, torch.zeros(3, 1, dtype=torch.long)], 1))
            prefix = torch.cat([prefix, logits[:, -1].argmax(-1, keepdim=True)], 1)
    slow = prefix[:, 1:]
    for row in range(3):
        end = (fast[row] == EOS).nonzero()
        stop = int(end[0]) + 1 if len(end) else 10
        assert torch.equal(fast[row, :stop], slow[row, :stop])
        assert (fast[row, stop:] == PAD).all()


def _score(decoder, memory, keep, tokens) -> float:
    """Summed log-probability of ``tokens`` (up to and with [EOS]) for one row."""
    end = (tokens == EOS).nonzero()
    tokens = tokens[: int(end[0]) + 1] if len(end) else tokens
    target = torch.cat([torch.tensor([BOS]), tokens, torch.tensor([PAD])]).unsqueeze(0)
    logp = torch.log_softmax(decoder(memory, keep, target), -1)[0]
    return float(logp[torch.arange(len(tokens)), tokens].sum())


def test_beam_search_finds_sequences_at_least_as_likely_as_greedy():
    decoder, memory, keep = _decoder()
    with torch.no_grad():
        greedy = decoder.generate(memory, keep, max_length=10)
        one = decoder.generate(memory, keep, max_length=10, beam_size=1)
        beam = decoder.generate(memory, keep, max_length=10, beam_size=5, length_penalty=0.0)
        assert torch.equal(greedy, one)
        for row in range(3):
            m, k = memory[row:row + 1], keep[row:row + 1]
            assert _score(decoder, m, k, beam[row]) >= _score(decoder, m, k, greedy[row]) - 1e-4


def test_early_stopping_on_a_generation_metric_is_refused():
    from lamina.config import validate_config
    from lamina.errors import LaminaError

    raw = {"inputs": [{"name": "english", "type": "text"}], "outputs": [{"name": "french", "type": "text"}],
           "trainer": {"early_stopping": {"metric": "french.bleu"}}}
    with pytest.raises(LaminaError, match="text outputs stop early on the validation loss"):
        validate_config(raw)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("translation")
    subprocess.run([sys.executable, str(ROOT / "examples/translation/make_data.py"), "--rows", "2500", "--out",
                    str(folder)], check=True, capture_output=True)
    return folder / "pairs.tsv"


@pytest.mark.slow
def test_translation_end_to_end_through_the_cli(pairs, tmp_path):
    assert_ok(run_cli("init", pairs, "--target", "french", "-o", tmp_path / "config.yaml", cwd=tmp_path))
    config = read_yaml(tmp_path / "config.yaml")
    assert config["outputs"] == [{"name": "french", "type": "text"}]
    assert config["inputs"] == [{"name": "english", "type": "text", "options": {"encoder": "transformer"}}]
    # A small model so the test stays short: the defaults are sized for real sentences.
    config["data"]["split"]["fractions"] = [0.8, 0.1, 0.1]
    config["inputs"][0]["options"].update(embedding_dim=64, layers=1, vocab_size=400)
    config["outputs"][0]["options"] = {"dim": 64, "layers": 1, "vocab_size": 400, "beam_size": 2}
    config["hidden"].update(depth=1, width=64)
    config["trainer"].update(epochs=25, batch_size=32, learning_rate=0.003, threads=1)
    config["trainer"]["early_stopping"]["patience"] = 4
    write_yaml(config, tmp_path / "config.yaml")
    result = assert_ok(run_cli("train", tmp_path / "config.yaml", "--output-dir", tmp_path / "runs", cwd=tmp_path))
    assert "exact_match" in result.stdout and "chrf" in result.stdout
    import lamina

    model = lamina.load(tmp_path / "runs" / "pairs")
    test = model.metrics["test"]["french"]
    assert test["exact_match"] >= 0.9, test  # observed 0.984 on these 250 held-out numbers
    assert test["chrf"] >= 95, test

    new = pd.DataFrame({"english": ["four hundred and twelve", "seventy-one", "", "two thousand and five"]})
    new.to_csv(tmp_path / "new.csv", index=False)
    assert_ok(run_cli("predict", tmp_path / "runs" / "pairs", tmp_path / "new.csv", "-o", tmp_path / "out.csv",
                      cwd=tmp_path))
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert list(out.columns) == ["french"] and len(out) == 4
    assert out["french"][0] == "quatre cent douze"
    from lamina.compare import counterparts
    from lamina.config import validate_config
    from lamina.data.load import load_splits

    frames, _ = load_splits(validate_config(config), tmp_path)
    classical = {r["model"]: r["metrics"] for r in counterparts(model, frames)}
    assert set(classical) == {"copy source", "translation memory"}
    assert classical["copy source"]["exact_match"] == 0.0
    # Looking up the nearest training sentence cannot compose a new number: the decoder must beat it clearly.
    assert test["chrf"] > classical["translation memory"]["chrf"] + 10, classical
    report = (tmp_path / "runs" / "pairs" / "report.html").read_text(encoding="utf-8")
    assert "test rows generated exactly" in report
    assert_user_error(run_cli("export", tmp_path / "runs" / "pairs", cwd=tmp_path), "generates text")


def test_a_large_training_split_with_a_text_output_is_scored_on_a_seeded_sample():
    from lamina.training import TRAIN_GENERATE, Split, _scored_rows

    class Output:
        sequence = True

    class Prep:
        outputs = [Output()]

    n = TRAIN_GENERATE + 500
    split = Split(pd.DataFrame({"a": range(n)}, index=range(100, 100 + n)),
                  {"x": torch.arange(n), "<target>y": torch.arange(n)}, {})
    frame, inputs = _scored_rows(Prep(), "train", split, seed=0)
    assert len(frame) == TRAIN_GENERATE and list(inputs) == ["x"]  # no teacher forcing when generating
    assert torch.equal(torch.from_numpy(frame["a"].to_numpy()), inputs["x"])  # the same rows on both sides
    assert _scored_rows(Prep(), "train", split, seed=0)[0].index.equals(frame.index)
    whole, _ = _scored_rows(Prep(), "test", split, seed=0)
    assert len(whole) == n  # held-out splits are scored whole
