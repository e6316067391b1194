"""Converter for Last.fm HetRec 2011 with the multimodal features of
giuspillo/extending_sota_data_mm_feat (MMRec layout) into RecBole atomic files
`lfm2k.inter` and `lfm2k.item`.

Raw files (in `<raw root>/lastfm-2k/`):
  * `lfm2k.inter`: `userID itemID rating x_label`, tab-separated, header optional;
    rating is always 1 (implicit feedback, dropped); x_label 0/1/2 is the source's
    train/valid/test split (counted, not written);
  * `item_id_map.tsv`: `npy_row_and_inter_itemID original_artistID artist_name`;
  * row i of `all-MiniLM-L6-v2.npy` (text of the artist's tags), `whisper.npy` and
    `vggish.npy` (audio) is item i;
  * `lfm2k_text.tsv`: `artistID<TAB>comma-joined tags`, in original artist ids.

Ids: `user_id` / `item_id` are the 0-based ids of `lfm2k.inter` (= .npy rows), as tokens.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np

from .common import RawSpec, join_tokens, read_lines, write_atomic_file
from .text import format_floats, tokenize

NAME = "lfm2k"
INTER_FILE = "lfm2k.inter"
ITEM_MAP_FILE = "item_id_map.tsv"
TEXT_FILE = "lfm2k_text.tsv"
# .item field -> .npy file (row i = item i)
VECTOR_FILES = {
    "text_vec": "all-MiniLM-L6-v2.npy",
    "audio_vec": "whisper.npy",
    "vggish_vec": "vggish.npy",
}
INTER_COLUMNS = ("userID", "itemID", "rating", "x_label")

SPEC = RawSpec(
    name=NAME,
    raw_subdir="lastfm-2k",
    raw_files=(INTER_FILE, ITEM_MAP_FILE, TEXT_FILE, *VECTOR_FILES.values()),
    sources=(
        "github giuspillo/extending_sota_data_mm_feat (Last.fm HetRec 2011 'lfm2k' in the MMRec "
        "layout: lfm2k.inter, item_id_map.tsv, all-MiniLM-L6-v2.npy, whisper.npy, vggish.npy) and "
        "lfm2k_text.tsv (artistID<TAB>comma-joined tags of the HetRec user_taggedartists data)"
    ),
)


# ---------------------------------------------------------------- reading
def _int_field(value: str, field: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{where}: field {field} is not an integer: {value!r}") from None


def read_inter(path: Path, n_items: int) -> tuple[list[tuple[int, int]], dict]:
    """(user, item) pairs in file order (first of each pair kept) and figures."""
    lines = read_lines(path)
    first = lines[0].split("\t") if lines else []
    has_header = bool(first) and not first[0].strip().lstrip("-").isdigit()
    if has_header and tuple(column.strip() for column in first[:2]) != INTER_COLUMNS[:2]:
        raise ValueError(f"{path}:1: header {first} does not start with {list(INTER_COLUMNS[:2])}")
    header = (
        [column.strip() for column in first] if has_header else list(INTER_COLUMNS[: len(first)])
    )
    pairs, seen = [], set()
    duplicates = 0
    ratings, labels = Counter(), Counter()
    for line_no, line in enumerate(
        lines[1:] if has_header else lines, start=2 if has_header else 1
    ):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        parts = line.split("\t")
        if len(parts) < 2 or len(parts) != len(header):
            raise ValueError(f"{where}: {len(parts)} fields, expected {len(header)} ({header})")
        values = dict(zip(header, parts))
        user = _int_field(values["userID"], "userID", where)
        item = _int_field(values["itemID"], "itemID", where)
        if user < 0:
            raise ValueError(f"{where}: field userID is negative: {user}")
        if not 0 <= item < n_items:
            raise ValueError(
                f"{where}: field itemID {item} is outside 0..{n_items - 1} ({ITEM_MAP_FILE} rows)"
            )
        if "rating" in values:
            ratings[values["rating"].strip()] += 1
        if "x_label" in values:
            labels[values["x_label"].strip()] += 1
        if (user, item) in seen:
            duplicates += 1
            continue
        seen.add((user, item))
        pairs.append((user, item))
    if not pairs:
        raise ValueError(f"{path}: no interactions")
    stats = {
        "inter_has_header": has_header,
        "duplicate_pairs": duplicates,
        "ratings": dict(sorted(ratings.items())),
        "x_label_counts": dict(sorted(labels.items())),
    }
    return pairs, stats


def read_item_map(path: Path) -> list[str]:
    """Original artist id of each item (row i of the file = item i)."""
    lines = read_lines(path)
    if not lines or lines[0].split("\t")[0].strip().isdigit():
        raise ValueError(
            f"{path}:1: expected a header `npy_row_and_inter_itemID original_artistID artist_name`"
        )
    artists = []
    for line_no, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        where = f"{path}:{line_no}"
        if len(parts) < 2:
            raise ValueError(f"{where}: expected at least 2 tab-separated fields, got {len(parts)}")
        row = _int_field(parts[0], "npy_row_and_inter_itemID", where)
        if row != len(artists):
            raise ValueError(
                f"{where}: field npy_row_and_inter_itemID is {row}, expected {len(artists)} "
                "(rows in order)"
            )
        artists.append(parts[1].strip())
    if len(set(artists)) != len(artists):
        raise ValueError(f"{path}: field original_artistID repeats an artist")
    return artists


def read_tag_texts(path: Path) -> dict[str, str]:
    """Original artist id -> comma-joined tags."""
    lines = read_lines(path)
    texts: dict[str, str] = {}
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        artist, _, text = line.partition("\t")
        artist = artist.strip()
        if line_no == 1 and not artist.isdigit():
            continue  # header `artistID text`
        if artist in texts:
            raise ValueError(f"{path}:{line_no}: field artistID {artist} repeats an earlier row")
        texts[artist] = text
    return texts


def load_vectors(path: Path, field: str, n_items: int) -> np.ndarray:
    """(n_items, dim) finite matrix of a .npy; ValueError naming the file, field (and row)."""
    matrix = np.load(path, allow_pickle=False)
    where = f"{path} (field {field})"
    if matrix.ndim != 2 or matrix.shape[0] != n_items:
        raise ValueError(
            f"{where}: shape {matrix.shape}, expected ({n_items}, dim): one row per item of "
            f"{ITEM_MAP_FILE}"
        )
    if not np.issubdtype(matrix.dtype, np.number):
        raise ValueError(f"{where}: dtype {matrix.dtype} is not numeric")
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"{where}: row {bad[0]} holds NaN or inf "
            f"({len(bad)} such rows, e.g. {bad[:5].tolist()})"
        )
    return matrix


# ---------------------------------------------------------------- convert
def convert_lfm2k(raw_dir: Path, out_dir: Path) -> dict:
    """Write lfm2k.inter / lfm2k.item into out_dir; return the build's figures."""
    started = time.perf_counter()
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    artists = read_item_map(raw_dir / ITEM_MAP_FILE)
    n_items = len(artists)
    vectors = {
        field: load_vectors(raw_dir / file, field, n_items) for field, file in VECTOR_FILES.items()
    }
    pairs, inter_stats = read_inter(raw_dir / INTER_FILE, n_items)
    texts = read_tag_texts(raw_dir / TEXT_FILE)

    n_inters = write_atomic_file(
        out_dir / f"{NAME}.inter",
        {
            "user_id:token": [str(user) for user, _ in pairs],
            "item_id:token": [str(item) for _, item in pairs],
        },
    )
    tags = [tokenize(texts.get(artist, "")) for artist in artists]  # commas split like spaces
    columns = {"item_id:token": [str(i) for i in range(n_items)]}
    for field, matrix in vectors.items():
        columns[f"{field}:float_seq"] = [format_floats(row) for row in matrix.tolist()]
    columns["tags:token_seq"] = [join_tokens(words) for words in tags]
    n_item_rows = write_atomic_file(out_dir / f"{NAME}.item", columns)

    used_items = {item for _, item in pairs}
    return {
        "dataset": NAME,
        "n_users": len({user for user, _ in pairs}),
        "n_items": n_items,
        "n_inters": n_inters,
        "items_without_users": n_items - len(used_items),
        **inter_stats,
        "vector_dims": {field: int(matrix.shape[1]) for field, matrix in vectors.items()},
        "artists_without_tags_text": sum(not texts.get(artist, "").strip() for artist in artists),
        "items_with_empty_tags": sum(not words for words in tags),
        "tag_texts_in_file": len(texts),
        "tags_vocab_size": len({word for words in tags for word in words}),
        "max_seq_len": {"tags": max(map(len, tags))},
        "files": {f"{NAME}.inter": n_inters, f"{NAME}.item": n_item_rows},
        "seconds": round(time.perf_counter() - started, 2),
    }


SPECS = {NAME: SPEC}
CONVERTERS = {NAME: convert_lfm2k}
