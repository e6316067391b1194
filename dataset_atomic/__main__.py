"""python -m dataset_atomic reviews --input FILE --name NAME [--meta FILE] [--out dataset] [--force]

Converts your own review file into RecBole atomic files (dataset_atomic/reviews.py)."""

import argparse
import json
import sys

from .reviews import convert_reviews


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m dataset_atomic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    reviews = commands.add_parser(
        "reviews", help="a review file (Amazon 2014 / 2018 JSON lines, CSV, TSV)"
    )
    reviews.add_argument(
        "--input", required=True, help="the reviews (.json, .json.gz, .csv, .tsv, gzipped or not)"
    )
    reviews.add_argument("--name", required=True, help="the dataset's name (RecBole's --dataset)")
    reviews.add_argument(
        "--meta", help="item metadata: Amazon JSON lines, or a CSV / TSV with item, title, category"
    )
    reviews.add_argument("--out", default="dataset", help="the data folder (RecBole's data_path)")
    reviews.add_argument(
        "--columns",
        nargs="*",
        default=[],
        help="column names of a CSV / TSV: user=... item=... rating=... timestamp=... text=...",
    )
    reviews.add_argument(
        "--force", action="store_true", help="overwrite the dataset's files if they exist"
    )
    args = parser.parse_args(argv)
    columns = dict(item.split("=", 1) for item in args.columns)
    try:
        stats = convert_reviews(args.input, args.name, args.out, args.meta, columns, args.force)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    print(json.dumps(stats, indent=1))
    print(
        f"run it: python run_recbole_hybrid.py --model=DEAMER --dataset={args.name} "
        f"--data_path={args.out} --config_files={args.out}/{args.name}.yaml --protocol=loo99",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
