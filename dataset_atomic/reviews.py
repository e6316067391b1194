"""Your own review data as RecBole atomic files, in one command:

    python -m dataset_atomic reviews --input FILE --name NAME [--meta FILE] [--out dataset]

Reads the public Amazon formats, gzipped or not: the 2014 JSON lines (reviewerID, asin,
overall, reviewText, summary, unixReviewTime) and the 2018 ones (the same plus vote, style,
verified, image); or a CSV / TSV with a header naming the columns user, item, rating,
timestamp and text (other names with ``--columns user=reviewer item=product ...``).
``--meta``: Amazon metadata JSON lines (asin, title, category or categories) or a CSV / TSV
with columns item, title, category.

Writes ``<out>/NAME/NAME.inter`` (user_id, item_id, rating, timestamp; ``review``: the review's
words, what the review models read; ``review_raw``: its exact text, escaped so that a tab, a
newline or a leading quote cannot split or quote the cell: ``unescape_cell`` gives it back),
``NAME.item`` (metadata words ``meta``, title words, category; item ids only without --meta)
and ``<out>/NAME.yaml``, the dataset yaml for ``--config_files`` (protocols rating, loo-rating,
loo99 and loo99-time as given). A (user, item) pair reviewed twice (the 2018 files have such
rows, some with other ratings) keeps its latest review (largest timestamp, then the later
line); the count is reported. Files of a dataset already in ``<out>/NAME`` are not
overwritten (``--force`` does).
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import yaml

from .common import join_tokens, number_field, required_token, write_atomic_file
from .text import tokenize, tokenize_words

INTER_HEADER = (
    "user_id:token",
    "item_id:token",
    "rating:float",
    "timestamp:float",
    "review:token",
    "review_raw:token",
)
ITEM_HEADER = ("item_id:token", "title:token_seq", "category:token_seq", "meta:token_seq")
AMAZON_FIELDS = {
    "user": "reviewerID",
    "item": "asin",
    "rating": "overall",
    "timestamp": "unixReviewTime",
    "text": "reviewText",
}
TABLE_FIELDS = {
    "user": "user",
    "item": "item",
    "rating": "rating",
    "timestamp": "timestamp",
    "text": "text",
}
ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", '"': '"'}


def escape_cell(text: str) -> str:
    """Text as one atomic-file cell: backslash, tab, newline, carriage return escaped, and a
    leading double quote (CSV quoting to RecBole's reader) as \\"."""
    cell = "".join(ESCAPES.get(ch, ch) for ch in text)
    return "\\" + cell if cell.startswith('"') else cell


def unescape_cell(cell: str) -> str:
    """The text ``escape_cell`` was given."""
    out, i = [], 0
    while i < len(cell):
        if cell[i] == "\\" and i + 1 < len(cell) and cell[i + 1] in UNESCAPES:
            out.append(UNESCAPES[cell[i + 1]])
            i += 2
        else:
            out.append(cell[i])
            i += 1
    return "".join(out)


def open_text(path: Path):
    opener = gzip.open if str(path).endswith(".gz") else open
    return opener(path, "rt", encoding="utf8", newline="")


def is_json_lines(path: Path) -> bool:
    with open_text(path) as handle:
        first = next((line for line in handle if line.strip()), "")
    return first.lstrip().startswith("{")


def table_rows(path: Path):
    """(file:line, {column: value}) of a CSV (comma) or TSV (tab) file with a header."""
    with open_text(path) as handle:
        sample = handle.readline()
    delimiter = "\t" if "\t" in sample else ","
    with open_text(path) as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        for row in reader:
            yield f"{path}:{reader.line_num}", row


def json_rows(path: Path):
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield f"{path}:{number}", json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{number}: not valid JSON ({err.msg})") from None


def field(row: dict, name: str, where: str, required=True) -> str:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValueError(f"{where}: field [{name}] is missing or empty")
        return ""
    return str(value)


def read_reviews(path: Path, columns: dict) -> tuple[list[dict], dict]:
    """Reviews in file order, the latest of each (user, item) pair; and figures."""
    rows = json_rows(path) if is_json_lines(path) else table_rows(path)
    names = dict(AMAZON_FIELDS if is_json_lines(path) else TABLE_FIELDS, **columns)
    kept, lines = {}, 0
    for where, row in rows:
        lines += 1
        if not isinstance(row, dict):
            raise ValueError(f"{where}: not a JSON object")
        review = {
            "user": required_token(row, names["user"], where),
            "item": required_token(row, names["item"], where),
            "rating": number_field(row, names["rating"], where),
            "timestamp": number_field(row, names["timestamp"], where),
            "text": field(row, names["text"], where, required=False),
        }
        key = (review["user"], review["item"])
        if key not in kept or review["timestamp"] >= kept[key]["timestamp"]:
            kept.pop(key, None)  # the latest review of the pair, at its place in the file
            kept[key] = review
    if not kept:
        raise ValueError(f"{path}: no reviews")
    return list(kept.values()), {
        "review_lines": lines,
        "duplicate_pairs_dropped": lines - len(kept),
    }


def read_meta(path: Path) -> dict:
    """item -> (title words, category words) from Amazon metadata or a table."""
    items = {}
    json_format = is_json_lines(path)
    for where, row in json_rows(path) if json_format else table_rows(path):
        item = required_token(row, "asin" if json_format else "item", where)
        category = row.get("category", row.get("categories", ""))
        if isinstance(category, list):  # 2018: [str]; 2014: [[str]]
            category = " ".join(c if isinstance(c, str) else " ".join(c) for c in category)
        items[item] = (tokenize(str(row.get("title") or "")), tokenize(str(category or "")))
    return items


def dataset_yaml(name: str) -> dict:
    return {
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "RATING_FIELD": "rating",
        "TIME_FIELD": "timestamp",
        "load_col": {
            "inter": ["user_id", "item_id", "rating", "timestamp", "review"],
            "item": ["item_id"],
        },
        "content_fields": ["meta"],
        "content_missing": "error",
        "review_field": "review",
        "val_interval": None,
        "user_inter_num_interval": None,
        "item_inter_num_interval": None,
    }


def convert_reviews(
    input_path: Path,
    name: str,
    out: Path,
    meta_path: Path | None = None,
    columns: dict | None = None,
    force: bool = False,
) -> dict:
    """Write ``out/name/name.inter``, ``.item`` and ``out/name.yaml``; return the figures."""
    folder = Path(out) / name
    targets = [folder / f"{name}.inter", folder / f"{name}.item", Path(out) / f"{name}.yaml"]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise FileExistsError(
            f"{', '.join(existing)} exist: not overwritten (--force rebuilds them)"
        )
    reviews, stats = read_reviews(Path(input_path), columns or {})
    meta = read_meta(Path(meta_path)) if meta_path else {}
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic_file(
        targets[0],
        {
            "user_id:token": [r["user"] for r in reviews],
            "item_id:token": [r["item"] for r in reviews],
            "rating:float": [f"{r['rating']:g}" for r in reviews],
            "timestamp:float": [f"{r['timestamp']:.0f}" for r in reviews],
            "review:token": [join_tokens(tokenize_words(r["text"])) for r in reviews],
            "review_raw:token": [escape_cell(r["text"]) for r in reviews],
        },
    )
    items = list(dict.fromkeys(r["item"] for r in reviews))
    titles = [meta.get(i, ([], []))[0] for i in items]
    categories = [meta.get(i, ([], []))[1] for i in items]
    write_atomic_file(
        targets[1],
        {
            "item_id:token": items,
            "title:token_seq": [join_tokens(t) for t in titles],
            "category:token_seq": [join_tokens(c) for c in categories],
            "meta:token_seq": [join_tokens(t + c) for t, c in zip(titles, categories)],
        },
    )
    targets[2].write_text(
        f"# {name}: written by python -m dataset_atomic reviews from {input_path}\n"
        + yaml.safe_dump(dataset_yaml(name), sort_keys=False)
    )
    return dict(
        stats,
        n_reviews=len(reviews),
        n_users=len({r["user"] for r in reviews}),
        n_items=len(items),
        items_without_metadata=sum(i not in meta for i in items),
        files=[str(t) for t in targets],
    )
