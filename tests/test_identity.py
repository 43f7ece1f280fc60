"""The identity output: its metrics (pairs, EER, TAR at FAR, rank-k, open-set), the split by person, the margin
loss, and training on people whose held-out ones are never seen in training."""

from __future__ import annotations

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
