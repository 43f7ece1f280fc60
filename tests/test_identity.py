"""The identity output: its metrics (pairs, EER, TAR at FAR, rank-k, open-set), the split by person, the margin
loss, and training on people whose held-out ones are never seen in training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lamina.data.split import split_frame
from lamina.errors import LaminaError
from lamina.outputs.identity import IGNORE, MarginLoss
from lamina.outputs.identity_metrics import identification, identity_metrics, threshold_at_far, verification


def clusters(people: int, per: int, dim: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, dim))
    x = np.repeat(centres, per, axis=0) + spread * rng.normal(size=(people * per, dim))
    return x, np.repeat([f"p{i}" for i in range(people)], per)


def test_threshold_accepts_at_most_the_target_share_of_impostors() -> None:
    impostor = np.random.default_rng(0).uniform(-1, 1, 10_000)
    for far in (1e-1, 1e-2, 1e-3):
        t = threshold_at_far(impostor, far)
        accepted = np.mean(impostor >= t)
        assert accepted <= far and accepted >= far - 2e-4


def test_verification_of_separated_and_of_overlapping_scores() -> None:
    rng = np.random.default_rng(1)
    separated = verification(rng.uniform(0.6, 1, 500), rng.uniform(-1, 0.5, 5000))
    assert separated["eer"] == 0 and separated["tar_at_far_1e-3"] == 1 and separated["roc_auc"] == 1
    # genuine ~ N(1, 1), impostor ~ N(-1, 1): the EER is Φ(-1) ≈ 0.159
    overlapping = verification(rng.normal(1, 1, 20_000), rng.normal(-1, 1, 20_000))
    assert abs(overlapping["eer"] - 0.1587) < 0.01
    assert overlapping["tar_at_far_1e-3"] < overlapping["tar_at_far_1e-2"] < 1 - overlapping["eer"]


def test_identification_ranks_and_rejects_people_not_enrolled() -> None:
    x, labels = clusters(10, 6, 16, 0.05)
    tight = identification(x, labels, enrol=3, threshold=0.9)
    assert tight["rank1"] == 1 and tight["queries"] == 30 and tight["enrolled"] == 10
    assert tight["dir_at_far_1e-2"] == 1
    assert tight["unknown_rate_at_threshold"] == 1  # another person's template never reaches a cosine of 0.9
    loose = identification(*clusters(10, 6, 16, 2.0), enrol=3, threshold=0.9)
    assert loose["rank1"] < tight["rank1"] and loose["rank5"] >= loose["rank1"]


def test_all_metrics_of_a_split() -> None:
    x, labels = clusters(8, 5, 8, 0.3)
    metrics = identity_metrics(x, labels, enrol=3, threshold=0.5)
    assert metrics["identities"] == 8 and metrics["genuine_pairs"] == 8 * 10
    assert metrics["impostor_pairs"] == 40 * 39 // 2 - 80
    assert 0 <= metrics["far_at_threshold"] <= 1 and metrics["eer"] < 0.2


def test_group_split_keeps_every_person_in_one_split() -> None:
    x, labels = clusters(20, 4, 2, 1.0)
    frame = pd.DataFrame({"a": x[:, 0], "person": labels})
    splits = split_frame(frame, "group", (0.6, 0.2, 0.2), 3, column="person")
    people = {name: set(part["person"]) for name, part in splits.items()}
    assert len(people["validation"]) == 4 and len(people["test"]) == 4
    assert not (people["train"] & people["validation"]) and not (people["train"] & people["test"])
    assert sum(len(p) for p in splits.values()) == len(frame)
    again = split_frame(frame, "group", (0.6, 0.2, 0.2), 3, column="person")
    assert {n: set(p["person"]) for n, p in again.items()} == people
    with pytest.raises(LaminaError, match="data.split.column"):
        split_frame(frame, "group", (0.6, 0.2, 0.2), 3, column="nope")


@pytest.mark.parametrize("kind", ["cosface", "arcface"])
def test_margin_loss_penalises_the_target_and_ignores_people_not_in_training(kind: str) -> None:
    torch.manual_seed(0)
    cos = torch.tanh(torch.randn(6, 4))
    raw = torch.cat([torch.zeros(6, 3), cos], dim=1)  # embedding width 3, then 4 cosines
    target = torch.tensor([0, 1, 2, 3, 0, 1])
    with_margin = MarginLoss(3, kind, 0.3, 10.0)(raw, target)
    plain = MarginLoss(3, kind, 0.0, 10.0)(raw, target)
    assert torch.isclose(plain, torch.nn.functional.cross_entropy(10 * cos, target), atol=1e-4)
    assert with_margin > plain
    ignored = MarginLoss(3, kind, 0.3, 10.0)(raw, torch.full((6,), IGNORE))
    assert float(ignored) == 0.0


def test_subcentres_give_each_person_the_cosine_to_their_nearest_centre() -> None:
    from lamina.outputs.identity import IdentityHead

    torch.manual_seed(0)
    head = IdentityHead(5, 4, 3, subcentres=2).eval()
    x = torch.randn(7, 5)
    raw = head(x)
    emb = raw[:, :4]
    every = emb @ torch.nn.functional.normalize(head.centres, dim=1).T  # (7, 6): person p owns rows 2p, 2p + 1
    assert raw.shape == (7, 4 + 3)
    assert torch.allclose(raw[:, 4:], torch.maximum(every[:, 0::2], every[:, 1::2]), atol=1e-6)


def test_training_scores_people_never_seen_and_calibrates_the_threshold(tmp_path) -> None:
    import lamina

    x, labels = clusters(40, 8, 8, 0.35)
    frame = pd.DataFrame({**{f"x{i}": x[:, i] for i in range(8)}, "person": labels})
    config = {"name": "people", "inputs": [{"name": f"x{i}", "type": "number"} for i in range(8)],
              "outputs": [{"name": "person", "type": "identity", "options": {"embedding_dim": 16}}],
              "hidden": {"depth": 1, "width": 32}, "trainer": {"epochs": 12, "batch_size": 32}}
    model = lamina.train(config, data=frame, output_dir=tmp_path, verbose=False)
    output = model.preprocessor.outputs[0]
    test = model.info["metrics"]["test"]["person"]
    held_out = split_frame(frame, "group", (0.7, 0.15, 0.15), 42, column="person")  # the config's default split
    assert set(output.state["identities"]) == set(held_out["train"]["person"])
    assert test["identities"] == held_out["test"]["person"].nunique() == 6
    assert not set(output.state["identities"]) & set(held_out["test"]["person"])
    assert output.state["threshold"] is not None and test["rank1"] >= 0.7 and test["eer"] < 0.2  # chance: 1/6 and 0.5
    # the embedding of a new person's rows: unit vectors, the prediction column
    emb = np.array(model.predict(frame.head(3))["person"].tolist())
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    reloaded = lamina.load(model.info["run_dir"])
    assert reloaded.preprocessor.outputs[0].state["threshold"] == output.state["threshold"]
    # the validation loss is the held-out people's own (it read 0 when they had no class in the training loss)
    history = [json.loads(line) for line in (Path(model.info["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    losses = [h["val_loss"] for h in history]
    assert all(np.isfinite(v) and v > 0 for v in losses) and min(losses[-3:]) < losses[0]
    held = held_out["validation"]
    emb = np.array(model.predict(held)["person"].tolist())
    right = output.held_out_loss(emb, held["person"].reset_index(drop=True))
    shuffled = output.held_out_loss(emb, pd.Series(np.random.default_rng(0).permutation(held["person"].to_numpy())))
    assert right is not None and shuffled is not None and right < shuffled


# --- end to end: eSpeak NG speakers, init → train → enroll → identify → verify, and the two served routes ---------


@pytest.mark.slow
def test_speakers_end_to_end(tmp_path) -> None:
    import json
    import shutil

    from fastapi.testclient import TestClient

    import lamina
    from lamina.serve.app import create_app
    from conftest import assert_ok, assert_user_error, example, read_yaml, run_cli, write_yaml

    pytest.importorskip("espeakng_loader")
    written = example("speakers").make(tmp_path, speakers=12, clips=6, seed=3)
    assert len(written) == 12 and set(written.values()) == {6}
    result = assert_ok(run_cli("init", "speakers/", "--target", "person", "--task", "identity", "-o", "id.yaml",
                               cwd=tmp_path))
    assert "identity of 'label'" in result.stdout
    config = read_yaml(tmp_path / "id.yaml")
    assert config["outputs"][0]["type"] == "identity" and config["data"]["split"]["method"] == "group"
    config["trainer"].update({"epochs": 3, "batch_size": 32, "time_limit": None})
    config["inputs"][0]["options"] = {"duration": 1.0, "widths": [16, 24]}
    write_yaml(config, tmp_path / "id.yaml")
    assert_ok(run_cli("train", "id.yaml", "-o", "runs/spk", cwd=tmp_path))
    model = lamina.load(tmp_path / "runs" / "spk")
    output = model.preprocessor.outputs[0]
    test = model.info["metrics"]["test"]["label"]
    trained_people = set(output.state["identities"])
    assert len(trained_people) == 8 and test["identities"] == 2 and output.state["threshold"] is not None
    held_out = sorted(set(written) - trained_people)
    assert len(held_out) == 4

    # enrol two held-out people from 3 clips each; query their other clips and a third person never enrolled
    for person in held_out[:2]:
        clips = sorted((tmp_path / "speakers" / person).iterdir())
        for i, clip in enumerate(clips):
            folder = tmp_path / ("gallery" if i < 3 else "query") / person
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(clip, folder / clip.name)
    shutil.copytree(tmp_path / "speakers" / held_out[2], tmp_path / "query" / "stranger")
    result = assert_ok(run_cli("enroll", "runs/spk", "gallery/", "-o", "gallery.json", cwd=tmp_path))
    assert "2 people from 6 files" in result.stdout
    gallery = json.loads((tmp_path / "gallery.json").read_text())
    assert [p["name"] for p in gallery["people"]] == held_out[:2] and len(gallery["model_hash"]) == 64
    result = assert_ok(run_cli("identify", "runs/spk", "gallery.json", "query/", "--threshold", "-1", cwd=tmp_path))
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "file,person,score,nearest" and len(lines) == 1 + 3 + 3 + 6
    # at a threshold of -1 nobody is unknown; at 1.01 everybody is
    assert all(line.split(",")[1] in held_out[:2] for line in lines[1:])
    result = assert_ok(run_cli("identify", "runs/spk", "gallery.json", "query/", "--threshold", "1.01", cwd=tmp_path))
    assert {line.split(",")[1] for line in result.stdout.strip().splitlines()[1:]} == {"unknown"}

    # verify's score is the cosine of the two embeddings lamina's predictions give
    a, b = sorted((tmp_path / "query" / "stranger").iterdir())[:2]
    result = assert_ok(run_cli("verify", "runs/spk", a, b, cwd=tmp_path))
    emb = np.array(model.predict(pd.DataFrame({"audio": [str(a), str(b)]}))["label"].tolist())
    assert f"score {float(emb[0] @ emb[1]):.4f}" in result.stdout
    assert f"threshold {output.state['threshold']:.4f}" in result.stdout

    # a gallery made with another model is refused in one line; so are a missing file and an init without a target
    assert_user_error(run_cli("verify", "runs/spk", a, "nope.wav", cwd=tmp_path), "nope.wav")
    assert_user_error(run_cli("init", "speakers/", "--task", "identity", "-o", "x.yaml", cwd=tmp_path),
                      "--task identity")
    gallery["model_hash"] = "0" * 64
    (tmp_path / "other.json").write_text(json.dumps(gallery))
    assert_user_error(run_cli("identify", "runs/spk", "other.json", "query/", cwd=tmp_path), "another model")

    client = TestClient(create_app(model))
    with open(a, "rb") as fa, open(b, "rb") as fb:
        served = client.post("/verify", files={"a": ("a.wav", fa), "b": ("b.wav", fb)}).json()
    assert served["score"] == pytest.approx(float(emb[0] @ emb[1]), abs=1e-3)
    with open(a, "rb") as fa, open(tmp_path / "gallery.json", "rb") as fg:
        served = client.post("/identify", files={"file": ("q.wav", fa), "gallery": ("g.json", fg)},
                             data={"threshold": "-1"}).json()
    assert served["person"] in held_out[:2] and served["nearest"] == served["person"]
    with open(a, "rb") as fa, open(tmp_path / "other.json", "rb") as fg:
        refused = client.post("/identify", files={"file": ("q.wav", fa), "gallery": ("g.json", fg)})
    assert refused.status_code == 422 and "another model" in refused.json()["detail"]


# --- the second modality: writers of handwriting fonts, and `lamina compare` on an identity model --------------------


def test_glyph_writers_are_real_fonts_with_letters_one_folder_each(tmp_path) -> None:
    from PIL import Image

    from conftest import example

    make_data = example("glyphs")
    fonts = make_data.matplotlib_fonts()
    written = make_data.make(tmp_path, fonts, images=3, seed=0)
    # DejaVu, Computer Modern and STIX faces; the fonts without Latin letters (STIX's size variants and non-Unicode
    # faces, Last Resort) are left out by the letter check
    assert len(written) >= 18 and not any(name.startswith(("stixsiz", "stixnonuni", "lastresort")) for name in written)
    assert make_data.draws_letters(fonts[0].parent / "DejaVuSans.ttf")
    assert not make_data.draws_letters(fonts[0].parent / "STIXSizOneSymReg.ttf")
    images = sorted((tmp_path / "glyphs").glob("*/*.png"))
    assert len(images) == 3 * len(written)
    pixels = np.asarray(Image.open(images[0]))
    assert pixels.shape == make_data.SIZE and pixels.min() < 100 < pixels.max()  # ink on paper


@pytest.mark.slow
def test_compare_scores_an_identity_model_and_its_classical_counterparts_on_unseen_writers(tmp_path) -> None:
    import json

    from conftest import assert_ok, example, read_yaml, run_cli, write_yaml

    make_data = example("glyphs")
    make_data.make(tmp_path, make_data.matplotlib_fonts(), images=6, seed=1)
    assert_ok(run_cli("init", "glyphs/", "--target", "writer", "--task", "identity", "-o", "id.yaml", cwd=tmp_path))
    config = read_yaml(tmp_path / "id.yaml")
    config["trainer"].update({"epochs": 2, "batch_size": 32, "time_limit": None})
    config["inputs"][0]["options"] = {"size": [20, 56], "widths": [8, 16]}
    write_yaml(config, tmp_path / "id.yaml")
    result = assert_ok(run_cli("compare", "id.yaml", cwd=tmp_path))
    assert "image features + LDA + cosine" in result.stdout, result.stdout
    rows = json.loads((tmp_path / "runs" / "glyphs" / "compare.json").read_text())["rows"]
    assert [r["model"] for r in rows] == ["lamina (deep)", "image features + cosine", "image features + LDA + cosine"]
    test_people = rows[0]["metrics"]["identities"]
    for row in rows:  # the same unseen writers, the same metrics, on every side
        metrics = row["metrics"]
        assert row["metric"] == "eer" and 0.0 <= metrics["eer"] <= 1.0 and metrics["identities"] == test_people >= 2
