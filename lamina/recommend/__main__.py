"""``python -m lamina.recommend init|recommend|similar ...``: the recommendation commands before (and beside) the
``lamina`` CLI, with the same error contract (one line on stderr, exit code 2)."""

from __future__ import annotations

import argparse
import logging
import sys

from lamina.errors import LaminaError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lamina.recommend")
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="write a recommendation config for an interaction log")
    init.add_argument("data")
    init.add_argument("--user", required=True)
    init.add_argument("--item", required=True)
    init.add_argument("--rating")
    init.add_argument("--min-rating", type=float)
    init.add_argument("--time")
    init.add_argument("--name")
    init.add_argument("-o", "--output", default="config.yaml")
    init.add_argument("--force", action="store_true")
    rec = sub.add_parser("recommend", help="top-k unseen items for users")
    rec.add_argument("model_dir")
    rec.add_argument("--user")
    rec.add_argument("--users")
    rec.add_argument("-k", type=int, default=10)
    rec.add_argument("-o", "--output")
    sim = sub.add_parser("similar", help="items nearest to an item")
    sim.add_argument("model_dir")
    sim.add_argument("--item", required=True)
    sim.add_argument("-k", type=int, default=10)
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.INFO)
    from lamina.recommend import commands

    try:
        if args.command == "init":
            path, notes = commands.init_recommendation_config(
                args.data, args.user, args.item, args.output, rating=args.rating, min_rating=args.min_rating,
                time=args.time, name=args.name, force=args.force)
            print(f"wrote {path}")
            for note in notes:
                print(f"  {note}")
            print(f"next: lamina train {path}")
        elif args.command == "recommend":
            commands.recommend(args.model_dir, user=args.user, users_file=args.users, k=args.k, output=args.output)
        else:
            commands.similar(args.model_dir, args.item, args.k)
    except LaminaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
