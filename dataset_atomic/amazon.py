"""Converter for Amazon 5-core Musical Instruments (McAuley et al., 2014 release; the MI
data set of DEAMER) into RecBole atomic files `amazon-mi.inter` and `amazon-mi.item`.

Raw files (in `<raw root>/amazon-musical-instruments/`):
  * `reviews_Musical_Instruments_5.json.gz`: one JSON object per line (reviewerID, asin,
    reviewText, overall, unixReviewTime, ...);
  * `meta_Musical_Instruments_5.csv`: `Product ID, Description, price, Category`
    (Description is the product title, Category the leaf category).

User and item ids are the raw reviewerID / asin strings (tokens). The review text is written
as ONE `token` cell per interaction (its words joined by spaces), not as a `token_seq`: the
words must not become a global RecBole vocabulary; review models tokenise the cell themselves.
"""

from __future__ import annotations

import csv
import gzip
import html
import json
import math
import time
from collections import Counter
from pathlib import Path

from .common import RawSpec, join_tokens, number_field, required_token, write_atomic_file
from .text import clean_title, safe_token, tokenize, tokenize_words

NAME = "amazon-mi"
REVIEWS_FILE = "reviews_Musical_Instruments_5.json.gz"
META_FILE = "meta_Musical_Instruments_5.csv"
META_COLUMNS = ("Product ID", "Description", "price", "Category")
RATING_RANGE = (1.0, 5.0)
SUSPICIOUS_PRICE = 0.1  # prices <= this look wrong (3 in the real file)

INTER_HEADER = ("user_id:token", "item_id:token", "rating:float", "timestamp:float", "review:token")
ITEM_HEADER = (
    "item_id:token",
    "title:token_seq",
    "category:token",
    "price:float",
    "meta:token_seq",
)

SPEC = RawSpec(
    name=NAME,
    raw_subdir="amazon-musical-instruments",
    raw_files=(REVIEWS_FILE, META_FILE),
    sources=(
        "the Amazon product data of McAuley et al. (SIGIR'15, WWW'16), 2014 release, 5-core "
        "Musical Instruments: reviews_Musical_Instruments_5.json.gz and the item metadata as "
        "meta_Musical_Instruments_5.csv (Product ID, Description, price, Category)"
    ),
)


# ---------------------------------------------------------------- reviews
def parse_review(row: object, where: str) -> tuple[str, str, float, int, str]:
    """(user, item, rating, timestamp, review words) of one JSON line; ValueError naming
    `where` (file:line) and the field when the line is malformed."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: not a JSON object")
    user = required_token(row, "reviewerID", where)
    item = required_token(row, "asin", where)
    rating = number_field(row, "overall", where)
    if not RATING_RANGE[0] <= rating <= RATING_RANGE[1]:
        raise ValueError(
            f"{where}: field overall (rating) {rating:g} is outside "
            f"{RATING_RANGE[0]:g}..{RATING_RANGE[1]:g}"
        )
    timestamp = number_field(row, "unixReviewTime", where)
    if timestamp != int(timestamp):
        raise ValueError(
            f"{where}: field unixReviewTime is not a whole number of seconds: {timestamp!r}"
        )
    text = row.get("reviewText")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise ValueError(f"{where}: field reviewText is not a string: {text!r}")
    review = join_tokens(tokenize_words(clean_review(text)))
    return user, item, rating, int(timestamp), review


def clean_review(text: str) -> str:
    """HTML entities (`1/4&#34;`) -> characters; the rest is left to the tokenizer."""
    return html.unescape(text)


def read_reviews(path: Path) -> tuple[list[tuple[str, str, float, int, str]], dict]:
    """Interactions in file order, first of each (user, item) pair kept; and figures."""
    rows, seen = [], set()
    duplicates = empty_texts = 0
    with gzip.open(path, "rt", encoding="utf8") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: not valid JSON ({error.msg})") from None
            parsed = parse_review(row, where)
            empty_texts += not str(row.get("reviewText") or "").strip()
            if parsed[:2] in seen:
                duplicates += 1
                continue
            seen.add(parsed[:2])
            rows.append(parsed)
    if not rows:
        raise ValueError(f"{path}: no reviews")
    ratings = Counter(rating for _, _, rating, _, _ in rows)
    stats = {
        "review_lines": len(rows) + duplicates,
        "duplicate_pairs": duplicates,
        "empty_review_texts": empty_texts,  # raw reviewText blank
        "empty_reviews": sum(not review for *_, review in rows),  # no word after tokenising
        "ratings": {f"{r:g}": ratings[r] for r in sorted(ratings)},
    }
    return rows, stats


# ---------------------------------------------------------------- metadata
def parse_price(raw: str) -> float | None:
    try:
        price = float(raw)
    except ValueError:
        return None
    return price if math.isfinite(price) else None


def read_meta(path: Path) -> dict[str, dict[str, str]]:
    """asin -> {title, category, price, meta} cells (in file order)."""
    items: dict[str, dict[str, str]] = {}
    with open(path, newline="", encoding="utf8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in META_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: header lacks {missing} (found {reader.fieldnames})")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            asin = (row["Product ID"] or "").strip()
            if not asin:
                raise ValueError(f"{where}: field Product ID is empty")
            if asin in items:
                raise ValueError(f"{where}: field Product ID {asin!r} repeats an earlier row")
            title = tokenize(clean_title(row["Description"] or ""))
            category = " ".join(clean_title(row["Category"] or "").split())
            price_text = (row["price"] or "").strip()
            price = parse_price(price_text)
            items[asin] = {
                "title": join_tokens(title),
                "category": safe_token(category),
                "price": price_text if price is not None else "",
                "meta": join_tokens(title + tokenize(category)),
                "_price": price,
            }
    return items


EMPTY_ITEM = {"title": "", "category": "", "price": "", "meta": "", "_price": None}


# ---------------------------------------------------------------- convert
def convert_amazon_mi(raw_dir: Path, out_dir: Path) -> dict:
    """Write amazon-mi.inter / amazon-mi.item into out_dir; return the build's figures."""
    started = time.perf_counter()
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, review_stats = read_reviews(raw_dir / REVIEWS_FILE)
    meta = read_meta(raw_dir / META_FILE)

    inter_columns = {header: [] for header in INTER_HEADER}
    cells = list(inter_columns.values())
    for user, item, rating, timestamp, review in rows:
        for column, value in zip(cells, (user, item, f"{rating:g}", str(timestamp), review)):
            column.append(value)
    n_inters = write_atomic_file(out_dir / f"{NAME}.inter", inter_columns)

    # .item: the reviewed items in metadata order, then any reviewed item without metadata
    reviewed = dict.fromkeys(item for _, item, *_ in rows)
    order = [asin for asin in meta if asin in reviewed] + [
        asin for asin in reviewed if asin not in meta
    ]
    records = [meta.get(asin, EMPTY_ITEM) for asin in order]
    item_columns = {
        "item_id:token": order,
        **{
            header: [record[header.split(":")[0]] for record in records]
            for header in ITEM_HEADER[1:]
        },
    }
    n_items = write_atomic_file(out_dir / f"{NAME}.item", item_columns)

    prices = [record["_price"] for record in records]
    meta_words = [record["meta"].split() for record in records]
    stats = {
        "dataset": NAME,
        "n_users": len({user for user, *_ in rows}),
        "n_items": n_items,
        "n_inters": n_inters,
        **review_stats,
        "meta_rows": len(meta),
        "meta_items_without_reviews": sum(asin not in reviewed for asin in meta),  # dropped
        "items_without_metadata": sum(asin not in meta for asin in order),
        "items_without_title": sum(not record["title"] for record in records),
        "items_without_category": sum(not record["category"] for record in records),
        "items_with_empty_meta": sum(not words for words in meta_words),
        "items_with_repeated_meta_words": sum(len(set(words)) < len(words) for words in meta_words),
        "n_categories": len({record["category"] for record in records if record["category"]}),
        "prices_missing": sum(price is None for price in prices),
        "prices_at_most_0.1": sum(
            price is not None and price <= SUSPICIOUS_PRICE for price in prices
        ),
        "meta_vocab_size": len({word for words in meta_words for word in words}),
        "max_seq_len": {
            "title": max(len(record["title"].split()) for record in records),
            "meta": max(map(len, meta_words)),
        },
        "review_words": {
            "max": max(len(review.split()) for *_, review in rows),
            "mean": round(sum(len(review.split()) for *_, review in rows) / len(rows), 1),
        },
        "files": {f"{NAME}.inter": n_inters, f"{NAME}.item": n_items},
        "seconds": round(time.perf_counter() - started, 2),
    }
    return stats


SPECS = {NAME: SPEC}
CONVERTERS = {NAME: convert_amazon_mi}
