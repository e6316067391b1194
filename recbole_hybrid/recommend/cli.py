"""``python -m recbole_hybrid.recommend``: top-k recommendations from a checkpoint, printed or
written as .csv / .json; a bad input ends in one line ``error: ...``."""

import argparse

from recbole_hybrid.checkpoint import CheckpointError
from recbole_hybrid.data.content import ContentError
from recbole_hybrid.recommend.abilities import CapabilityError
from recbole_hybrid.recommend.recommender import Recommender, UnknownIdError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m recbole_hybrid.recommend",
        description="Top-k recommendations from a checkpoint saved by run_recbole_hybrid.py",
    )
    parser.add_argument("--checkpoint", required=True, help="saved/<Model>-<date>.pth")
    parser.add_argument("--user", nargs="+", default=[], help="external ids of the model's users")
    parser.add_argument(
        "--history", nargs="+", help="external item ids of a new user's history (fold-in)"
    )
    parser.add_argument(
        "--new-items", help=".item-style file of new items (header item_id:token field:type ...)"
    )
    parser.add_argument(
        "--candidates", nargs="+", help="rank only these known items (+ the new items)"
    )
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--include-seen", action="store_true", help="keep the items of each user's history"
    )
    parser.add_argument("--output", help="write a .csv or .json file instead of printing a table")
    parser.add_argument(
        "--data-path", help="directory holding <dataset>/ if it moved since training"
    )
    args = parser.parse_args(argv)
    if not args.user and not args.history:
        parser.error("give --user and/or --history")
    if args.output and not args.output.endswith((".csv", ".json")):
        parser.error("--output must end in .csv or .json")
    if args.k < 1:
        parser.error(f"--k {args.k}: the number of items to recommend must be at least 1")
    return args


def write_table(table, output=None):
    if output is None:
        print(table.to_string(index=False))
    elif output.endswith(".json"):
        table.to_json(output, orient="records", indent=2)
    else:
        table.to_csv(output, index=False)


def main(argv=None):
    args = parse_args(argv)
    try:
        recommender = Recommender.from_checkpoint(args.checkpoint, args.data_path)
        table = recommender.recommend(
            users=args.user,
            history=args.history,
            new_items=args.new_items,
            k=args.k,
            exclude_seen=not args.include_seen,
            candidates=args.candidates,
        )
    except (UnknownIdError, CapabilityError, ContentError, CheckpointError) as err:
        raise SystemExit(f"error: {err}") from None
    write_table(table, args.output)
