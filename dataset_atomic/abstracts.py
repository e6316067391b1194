"""The raw-text path on real abstracts: citeulike-a's `abstract-subset/` (titles and
abstracts of 1,929 articles, mapped to citeulike-a indices) -> title+abstract bag-of-words
with the same tokeniser and gensim Dictionary as the converters.

The full citeulike-a abstracts (`raw-data.csv`, `mult.dat`) are missing; this subset is
what exists to exercise raw text and to measure what abstracts add over titles.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .text import BowDoc, build_bow, clean_title, tokenize

SUBSET_DIR = "abstract-subset"


def read_abstract_subset(raw_dir: Path) -> list[dict]:
    """Rows {index (citeulike-a, 0-based), title, abstract}, in subset order."""
    folder = Path(raw_dir) / SUBSET_DIR
    with open(folder / "subset_to_citeulike-a_index.tsv", newline="", encoding="utf-8") as f:
        index_of = {
            row["subset_doc_id"]: int(row["citeulike_a_doc_index0"])
            for row in csv.DictReader(f, delimiter="\t")
        }
    with open(folder / "raw-data.csv", newline="", encoding="utf-8") as f:
        return [
            {
                "index": index_of[row["doc.id"]],
                "title": clean_title(row["raw.title"]),
                "abstract": row["raw.abstract"],
            }
            for row in csv.DictReader(f)
        ]


def abstract_subset_bow(
    raw_dir: Path,
    with_abstract: bool = True,
    no_below: int = 2,
    no_above: float = 0.5,
    keep_n: int = 8000,
) -> tuple[list[int], object, list[BowDoc]]:
    """(citeulike-a indices, gensim Dictionary, BoW corpus) of the subset's title(+abstract)."""
    rows = read_abstract_subset(raw_dir)
    docs = [tokenize(r["title"] + (" " + r["abstract"] if with_abstract else "")) for r in rows]
    vocab, corpus = build_bow(docs, no_below=no_below, no_above=no_above, keep_n=keep_n)
    return [r["index"] for r in rows], vocab, corpus
