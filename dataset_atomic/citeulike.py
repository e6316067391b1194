"""Converters for citeulike-a and citeulike-t (raw files of js05212/citeulike-a,
js05212/citeulike-t, and the CVAE fixed splits of eelxpeng/CollaborativeVAE)
into RecBole atomic files.

Both datasets go through one pipeline (`convert`); they differ only in how the
item content is read (`load_citeulike_a_content`, `load_citeulike_t_content`).
Item ids are the 0-based line numbers of the raw item files, user ids the
0-based line numbers of users.dat; both are written as tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .common import (
    StageLog,
    join_tokens,
    parse_count_line,
    read_id_lists,
    read_lines,
    write_atomic_file,
    write_inter,
)
from .text import (
    BowDoc,
    bow_by_count,
    bow_to_words,
    build_bow,
    clean_title,
    doc2vec_vectors,
    format_floats,
    lsi_vectors,
    safe_token,
    tokenize,
)

SPLIT_PS = (1, 10)  # training items per user in the CVAE protocol
RANDOM_SPLIT_SEEDS = range(5)
VALID_SEED = 2026  # numpy default_rng seed carving validation out of test
VALID_PERCENT = 10  # % of each user's test items, rounded down
VECTOR_DIM = 100
VECTOR_SEED = 2026  # LsiModel random_seed and Doc2Vec seed
BOW_KEEP_N = 8000  # citeulike-a vocabulary sizes (like the papers' 8,000 words)
BOW_NO_BELOW = 3  # a word must occur in >= 3 items ...
BOW_NO_ABOVE = 0.5  # ... and in <= 50% of the items

SPLIT_FILES = tuple(
    f"cvae-splits/cf-{part}-{p}-users.dat" for p in SPLIT_PS for part in ("train", "test")
)
SPLIT_SOURCE = (
    "github eelxpeng/CollaborativeVAE (cf-{train,test}-{1,10}-users.dat of its data/<name>/ "
    "folder) into <raw>/<name>/cvae-splits/"
)


# ---------------------------------------------------------------- item content
@dataclass
class Content:
    """What a dataset's content loader returns."""

    columns: dict[str, list[str]]  # .item columns besides item_id and the vectors
    corpus: list[BowDoc]  # bag of words for TF-IDF -> LSI
    documents: list[list[str]]  # word lists for Doc2Vec
    stats: dict = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return len(self.corpus)


def bow_columns(prefix: str, corpus: list[BowDoc], id2word) -> dict[str, list[str]]:
    """Parallel `<prefix>_ids:token_seq` / `<prefix>_counts:float_seq`, most frequent first."""
    ordered = [bow_by_count(doc) for doc in corpus]
    return {
        f"{prefix}_ids:token_seq": [join_tokens(id2word[i] for i, _ in doc) for doc in ordered],
        f"{prefix}_counts:float_seq": [format_floats(c for _, c in doc) for doc in ordered],
    }


def tag_column(tags_by_item: Sequence[Sequence[str]]) -> list[str]:
    """`tags:token_seq` cells; spaces inside a tag become `_`."""
    return [join_tokens(safe_token(tag) for tag in tags) for tags in tags_by_item]


def load_citeulike_a_content(raw_dir: Path) -> Content:
    """Cleaned titles + tags -> title+tags BoW, title-only BoW, tags, title words."""
    raw_titles = read_lines(raw_dir / "titles.txt")
    titles = [clean_title(line) for line in raw_titles]
    tag_names = read_lines(raw_dir / "tags.dat")
    tags_by_item = [[tag_names[t] for t in ids] for ids in read_id_lists(raw_dir / "item-tag.dat")]
    if len(titles) != len(tags_by_item):
        raise ValueError(f"titles.txt has {len(titles)} lines, item-tag.dat {len(tags_by_item)}")

    title_words = [tokenize(title) for title in titles]
    doc_words = [
        words + [w for tag in tags for w in tokenize(tag)]
        for words, tags in zip(title_words, tags_by_item)
    ]
    bow_args = dict(no_below=BOW_NO_BELOW, no_above=BOW_NO_ABOVE, keep_n=BOW_KEEP_N)
    vocab, corpus = build_bow(doc_words, **bow_args)
    title_vocab, title_corpus = build_bow(title_words, **bow_args)

    columns = {
        **bow_columns("bow", corpus, vocab),
        **bow_columns("title_bow", title_corpus, title_vocab),
        "tags:token_seq": tag_column(tags_by_item),
        "title:token_seq": [join_tokens(words) for words in title_words],
    }
    documents = [[w for w in words if w in vocab.token2id] for words in doc_words]
    stats = {
        "vocab_size": len(vocab),
        "title_vocab_size": len(title_vocab),
        "titles_changed_by_cleaning": sum(t != raw.strip() for t, raw in zip(titles, raw_titles)),
        "items_without_tags": sum(not tags for tags in tags_by_item),
        "empty_title_documents": sum(not doc for doc in title_corpus),
    }
    return Content(columns, corpus, documents, stats)


def read_mult(path: Path) -> list[BowDoc]:
    """mult.dat: line j = `n word:count ...` -> [(word, count), ...]."""
    corpus = []
    for i, line in enumerate(read_lines(path)):
        pairs = (entry.split(":") for entry in parse_count_line(line, path, i))
        corpus.append([(int(word), float(count)) for word, count in pairs])
    return corpus


def transpose(lists: Sequence[np.ndarray], n_rows: int) -> list[list[int]]:
    """Row-of-columns lists -> column-of-rows lists (tag-item.dat -> tags of each item)."""
    out: list[list[int]] = [[] for _ in range(n_rows)]
    for row, cols in enumerate(lists):
        for col in cols.tolist():
            out[col].append(row)
    return out


def load_citeulike_t_content(raw_dir: Path) -> Content:
    """mult.dat BoW over vocabulary.dat (title+abstract), tags from tag-item.dat."""
    vocabulary = [safe_token(word) for word in read_lines(raw_dir / "vocabulary.dat")]
    if len(set(vocabulary)) != len(vocabulary):
        raise ValueError("vocabulary.dat: words not unique once made into tokens")
    corpus = read_mult(raw_dir / "mult.dat")
    tag_names = read_lines(raw_dir / "tags.dat")
    tag_ids = transpose(read_id_lists(raw_dir / "tag-item.dat"), len(corpus))
    columns = {
        **bow_columns("bow", corpus, vocabulary),
        "tags:token_seq": tag_column([[tag_names[t] for t in ids] for ids in tag_ids]),
    }
    # mult.dat has no word order: Doc2Vec sees each word repeated by its count
    documents = [bow_to_words(doc, vocabulary) for doc in corpus]
    stats = {"vocab_size": len(vocabulary), "items_without_tags": sum(not ids for ids in tag_ids)}
    return Content(columns, corpus, documents, stats)


# ---------------------------------------------------------------- splits
def carve_valid(test_by_user: Sequence[np.ndarray], seed: int = VALID_SEED):
    """Move a seeded VALID_PERCENT% (rounded down) of each user's test items to validation."""
    rng = np.random.default_rng(seed)
    valid, test = [], []
    for items in test_by_user:
        n_valid = len(items) * VALID_PERCENT // 100
        picked = np.zeros(len(items), dtype=bool)
        picked[rng.choice(len(items), size=n_valid, replace=False)] = True
        valid.append(np.sort(items[picked]))
        test.append(np.sort(items[~picked]))
    return valid, test


def random_train_test(items_by_user: Sequence[np.ndarray], n_train: int, seed: int):
    """n_train random items per user for training, the rest test; users with
    <= n_train items keep them all in training (as the CVAE authors' data_prep.py does)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for items in items_by_user:
        if len(items) <= n_train:
            train.append(np.sort(items))
            test.append(items[:0])
            continue
        order = rng.permutation(len(items))
        train.append(np.sort(items[order[:n_train]]))
        test.append(np.sort(items[order[n_train:]]))
    return train, test


def check_partition(items_by_user, *parts) -> None:
    """Assert the parts are disjoint and together give exactly each user's items."""
    for user, items in enumerate(items_by_user):
        joined = np.concatenate([part[user] for part in parts])
        if not np.array_equal(np.sort(joined), np.sort(items)):
            raise AssertionError(f"split is not a partition of user {user}'s items")


def lowest_id_fraction(items_by_user, train) -> dict:
    """How often the training items are the user's lowest item ids."""
    hits = [
        np.array_equal(np.sort(tr), np.sort(items)[: len(tr)])
        for items, tr in zip(items_by_user, train)
    ]
    longer = [hit for hit, items, tr in zip(hits, items_by_user, train) if len(items) > len(tr)]
    return {
        "train_is_lowest_ids": float(np.mean(hits)),
        "train_is_lowest_ids_users_with_test": float(np.mean(longer)) if longer else None,
    }


def write_split(out_dir: Path, stem: str, train, valid, test) -> dict[str, int]:
    """`<stem>-{train,valid,test}.inter`; returns rows per file."""
    return {
        f"{stem}-{part}.inter": write_inter(out_dir / f"{stem}-{part}.inter", items)
        for part, items in (("train", train), ("valid", valid), ("test", test))
    }


def read_fixed_split(raw_dir: Path, p: int, n_users: int):
    train = read_id_lists(raw_dir / f"cvae-splits/cf-train-{p}-users.dat")
    test = read_id_lists(raw_dir / f"cvae-splits/cf-test-{p}-users.dat")
    if len(train) != n_users or len(test) != n_users:
        raise ValueError(
            f"P={p} split files have {len(train)}/{len(test)} users, users.dat {n_users}"
        )
    return train, test


def write_fixed_splits(raw_dir: Path, out_dir: Path, name: str, users) -> tuple[dict, dict]:
    """The authors' train/test files, validation carved out of test."""
    files, facts = {}, {}
    for p in SPLIT_PS:
        train, raw_test = read_fixed_split(raw_dir, p, len(users))
        check_partition(users, train, raw_test)
        valid, test = carve_valid(raw_test)
        check_partition(users, train, valid, test)
        files.update(write_split(out_dir, f"{name}.P{p}", train, valid, test))
        facts[f"P{p}"] = {
            **lowest_id_fraction(users, train),
            "users_without_test": sum(len(t) == 0 for t in raw_test),
            "users_with_at_most_P_items": sum(len(u) <= p for u in users),
            "train_count_is_min_P_n": all(len(tr) == min(p, len(u)) for tr, u in zip(train, users)),
        }
    return files, facts


def write_random_splits(out_dir: Path, name: str, users) -> dict:
    files = {}
    for p in SPLIT_PS:
        for seed in RANDOM_SPLIT_SEEDS:
            train, raw_test = random_train_test(users, p, seed)
            valid, test = carve_valid(raw_test)
            check_partition(users, train, valid, test)
            files.update(write_split(out_dir, f"{name}.P{p}-random-s{seed}", train, valid, test))
    return files


# ---------------------------------------------------------------- .item
def dense_vectors(content: Content, d2v_epochs: int, log: StageLog) -> dict[str, np.ndarray]:
    log.stage("TF-IDF -> LSI text vectors (text_vec)")
    text_vec = lsi_vectors(content.corpus, VECTOR_DIM, seed=VECTOR_SEED, report=log.say)
    log.stage(f"Doc2Vec vectors (d2v_vec), {d2v_epochs} epochs")
    d2v_vec = doc2vec_vectors(
        content.documents, VECTOR_DIM, seed=VECTOR_SEED, epochs=d2v_epochs, report=log.epoch
    )
    return {"text_vec": text_vec, "d2v_vec": d2v_vec}


def write_item_file(path: Path, content: Content, vectors: dict[str, np.ndarray]) -> int:
    columns = {"item_id:token": [str(i) for i in range(content.n_items)], **content.columns}
    for field_name, matrix in vectors.items():
        columns[f"{field_name}:float_seq"] = [format_floats(row) for row in matrix.tolist()]
    return write_atomic_file(path, columns)


def max_seq_lengths(columns: dict[str, list[str]]) -> dict[str, int]:
    return {
        header.split(":")[0]: max(len(cell.split()) for cell in cells)
        for header, cells in columns.items()
        if header.endswith("_seq")
    }


# ---------------------------------------------------------------- pipeline
@dataclass(frozen=True)
class DatasetSpec:
    name: str
    content_files: tuple[str, ...]
    load_content: Callable[[Path], Content]
    d2v_epochs: int
    source: str  # where the raw files come from

    @property
    def raw_files(self) -> tuple[str, ...]:
        return ("users.dat",) + self.content_files + SPLIT_FILES

    @property
    def sources(self) -> str:
        return f"{self.source}; {SPLIT_SOURCE.replace('<name>', self.name)}"


def convert(raw_dir: Path, out_dir: Path, spec: DatasetSpec) -> dict:
    """Write all atomic files of one dataset into out_dir; return its figures."""
    started = time.perf_counter()
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = StageLog(spec.name)
    log.stage("reading the users and the items' content")
    users = read_id_lists(raw_dir / "users.dat")
    content = spec.load_content(raw_dir)
    check_item_ids(users, content.n_items)
    files = {f"{spec.name}.inter": write_inter(out_dir / f"{spec.name}.inter", users)}

    text_started = time.perf_counter()
    vectors = dense_vectors(content, spec.d2v_epochs, log)
    text_seconds = time.perf_counter() - text_started
    log.stage(f"writing {spec.name}.item and the CVAE splits (fixed, random)")
    files[f"{spec.name}.item"] = write_item_file(out_dir / f"{spec.name}.item", content, vectors)

    split_files, split_facts = write_fixed_splits(raw_dir, out_dir, spec.name, users)
    files.update(split_files)
    files.update(write_random_splits(out_dir, spec.name, users))
    return {
        "dataset": spec.name,
        "n_users": len(users),
        "n_items": content.n_items,
        "n_inters": int(sum(len(items) for items in users)),
        "items_without_users": content.n_items - len(np.unique(np.concatenate(users))),
        "empty_documents": sum(not doc for doc in content.corpus),
        **content.stats,
        "max_seq_len": max_seq_lengths(content.columns),
        "vector_dim": VECTOR_DIM,
        "fixed_split_facts": split_facts,
        "files": files,
        "seconds_vectors": round(text_seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
    }


def check_item_ids(users: Sequence[np.ndarray], n_items: int) -> None:
    top = max(int(items.max()) for items in users if len(items))
    if top >= n_items:
        raise ValueError(f"users.dat refers to item {top}, but there are only {n_items} items")


CITEULIKE_A = DatasetSpec(
    name="citeulike-a",
    content_files=("titles.txt", "item-tag.dat", "tags.dat"),
    load_content=load_citeulike_a_content,
    d2v_epochs=20,
    source=(
        "github js05212/citeulike-a (users.dat, item-tag.dat, tags.dat); titles.txt (line j+1 = "
        "title of article j) from the TopicModelsVB.jl release of the same corpus"
    ),
)
CITEULIKE_T = DatasetSpec(
    name="citeulike-t",
    content_files=("mult.dat", "vocabulary.dat", "tag-item.dat", "tags.dat"),
    load_content=load_citeulike_t_content,
    d2v_epochs=10,
    source=(
        "github js05212/citeulike-t (users.dat, mult.dat, vocabulary.dat, tag-item.dat, tags.dat)"
    ),
)
SPECS = {spec.name: spec for spec in (CITEULIKE_A, CITEULIKE_T)}


def convert_citeulike_a(raw_dir: Path, out_dir: Path) -> dict:
    return convert(raw_dir, out_dir, CITEULIKE_A)


def convert_citeulike_t(raw_dir: Path, out_dir: Path) -> dict:
    return convert(raw_dir, out_dir, CITEULIKE_T)


CONVERTERS = {"citeulike-a": convert_citeulike_a, "citeulike-t": convert_citeulike_t}
