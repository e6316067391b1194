"""Tests of dataset_atomic: the citeulike converters on the real raw files (built
once per session, both datasets in parallel), the text helpers, and
ensure_atomic's stamp/rebuild/error behaviour on a tiny fake raw dir; the amazon-mi
and lfm2k converters on the real raw files (built once per module) and on tiny fake
raw dirs with malformed rows.
"""

import html
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dataset_atomic
from dataset_atomic import RAW_DATA_ENV, ensure_atomic
from dataset_atomic.citeulike import RANDOM_SPLIT_SEEDS, SPLIT_PS, random_train_test
from dataset_atomic.common import read_id_lists, read_lines
from dataset_atomic.text import clean_title, fix_mojibake, unquote_csv

DATASETS = ("citeulike-a", "citeulike-t")
# figures of ../shared/data/README.md
EXPECTED = {
    "citeulike-a": dict(
        n_users=5551, n_items=16980, n_inters=204986, no_user_items=0, empty_docs=26, vocab=8000
    ),
    "citeulike-t": dict(
        n_users=7947, n_items=25975, n_inters=134860, no_user_items=391, empty_docs=31, vocab=20000
    ),
}
VECTOR_FIELDS = ("text_vec", "d2v_vec")


# ---------------------------------------------------------------- helpers
def read_atomic(path: Path) -> pd.DataFrame:
    """An atomic file as strings, columns named without their `:type`."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [column.split(":")[0] for column in frame.columns]
    return frame


def read_pairs(path: Path) -> np.ndarray:
    """An .inter file as sorted int64 codes user * 2**32 + item."""
    frame = pd.read_csv(path, sep="\t", dtype=np.int64)
    return np.sort(frame.iloc[:, 0].to_numpy() * 2**32 + frame.iloc[:, 1].to_numpy())


def items_per_user(path: Path, n_users: int) -> np.ndarray:
    frame = pd.read_csv(path, sep="\t", dtype=np.int64)
    return np.bincount(frame.iloc[:, 0].to_numpy(), minlength=n_users)


def seq_lengths(cells: pd.Series) -> np.ndarray:
    return np.array([len(cell.split()) for cell in cells])


def split_stems(name: str) -> list[str]:
    fixed = [f"{name}.P{p}" for p in SPLIT_PS]
    random = [f"{name}.P{p}-random-s{seed}" for p in SPLIT_PS for seed in RANDOM_SPLIT_SEEDS]
    return fixed + random


# ---------------------------------------------------------------- real data
@pytest.fixture(scope="session")
def built(raw_data_root, tmp_path_factory) -> dict:
    """Both real datasets built once by ensure_atomic, in two single-BLAS-thread workers."""
    data_path = tmp_path_factory.mktemp("atomic")
    context = multiprocessing.get_context("spawn")
    with pytest.MonkeyPatch.context() as patch:
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            patch.setenv(variable, "1")  # two processes on two cores: no oversubscription
        with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
            jobs = {
                name: pool.submit(ensure_atomic, name, data_path, raw_data_root)
                for name in DATASETS
            }
            return {name: Path(job.result()) for name, job in jobs.items()}


@pytest.fixture(scope="session")
def users_dat(raw_data_root) -> dict:
    return {name: read_id_lists(raw_data_root / name / "users.dat") for name in DATASETS}


@pytest.mark.slow
@pytest.mark.parametrize("name", DATASETS)
def test_inter_counts_match_data_readme(built, name):
    inter = read_atomic(built[name] / f"{name}.inter")
    expected = EXPECTED[name]
    assert len(inter) == expected["n_inters"]
    assert inter["user_id"].nunique() == expected["n_users"]
    assert not inter.duplicated().any()
    n_items_used = inter["item_id"].nunique()
    assert expected["n_items"] - n_items_used == expected["no_user_items"]


@pytest.mark.parametrize("name", DATASETS)
def test_item_file_has_every_item(built, name):
    items = read_atomic(built[name] / f"{name}.item")
    inter = read_atomic(built[name] / f"{name}.inter")
    assert list(items["item_id"]) == [str(i) for i in range(EXPECTED[name]["n_items"])]
    assert set(inter["item_id"]) <= set(items["item_id"])


@pytest.mark.parametrize("name", DATASETS)
def test_bag_of_words_fields(built, name):
    items = read_atomic(built[name] / f"{name}.item")
    prefixes = ("bow", "title_bow") if name == "citeulike-a" else ("bow",)
    for prefix in prefixes:
        id_lengths = seq_lengths(items[f"{prefix}_ids"])
        assert (id_lengths == seq_lengths(items[f"{prefix}_counts"])).all()
        counts = np.array([float(c) for cell in items[f"{prefix}_counts"] for c in cell.split()])
        assert (counts >= 1).all()
        vocabulary = {word for cell in items[f"{prefix}_ids"] for word in cell.split()}
        assert len(vocabulary) <= EXPECTED[name]["vocab"]
    assert (seq_lengths(items["bow_ids"]) == 0).sum() == EXPECTED[name]["empty_docs"]
    assert not items["tags"].str.contains('"').any()


@pytest.mark.slow
@pytest.mark.parametrize("name", DATASETS)
def test_dense_vectors_fixed_dim_no_nan(built, name):
    items = read_atomic(built[name] / f"{name}.item")
    for field in VECTOR_FIELDS:
        matrix = np.array([np.array(cell.split(), dtype=float) for cell in items[field]])
        assert matrix.shape == (EXPECTED[name]["n_items"], 100)
        assert np.isfinite(matrix).all()
        nonzero_rows = np.abs(matrix).sum(axis=1) > 0
        assert nonzero_rows.sum() == EXPECTED[name]["n_items"] - EXPECTED[name]["empty_docs"]


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("p", SPLIT_PS)
def test_fixed_split_train_is_authors_train(built, raw_data_root, name, p):
    authors_train = read_id_lists(raw_data_root / name / f"cvae-splits/cf-train-{p}-users.dat")
    ours = built[name] / f"{name}.P{p}-train.inter"
    assert list(items_per_user(ours, len(authors_train))) == [len(items) for items in authors_train]
    codes = np.sort(np.concatenate([u * 2**32 + items for u, items in enumerate(authors_train)]))
    assert np.array_equal(read_pairs(ours), codes)


@pytest.mark.parametrize("name", DATASETS)
def test_splits_are_disjoint_and_complete(built, name):
    everything = read_pairs(built[name] / f"{name}.inter")
    for stem in split_stems(name):
        parts = [
            read_pairs(built[name] / f"{stem}-{part}.inter") for part in ("train", "valid", "test")
        ]
        joined = np.sort(np.concatenate(parts))
        assert np.array_equal(joined, everything), stem  # equal multisets: disjoint and complete


@pytest.mark.parametrize("name", DATASETS)
def test_valid_is_a_tenth_of_each_users_test_items(built, users_dat, name):
    n_users = len(users_dat[name])
    for stem in (f"{name}.P1", f"{name}.P10-random-s0"):
        valid = items_per_user(built[name] / f"{stem}-valid.inter", n_users)
        test = items_per_user(built[name] / f"{stem}-test.inter", n_users)
        assert np.array_equal(valid, (valid + test) // 10), stem


@pytest.mark.parametrize("name", DATASETS)
def test_random_splits_deterministic_and_differ_by_seed(built, users_dat, name):
    users = users_dat[name]
    trains = {}
    for seed in (0, 1):
        train, _ = random_train_test(users, 10, seed)  # recomputed in this process
        codes = np.sort(np.concatenate([u * 2**32 + items for u, items in enumerate(train)]))
        assert np.array_equal(
            read_pairs(built[name] / f"{name}.P10-random-s{seed}-train.inter"), codes
        )
        trains[seed] = codes
    assert not np.array_equal(trains[0], trains[1])


@pytest.mark.parametrize("name", DATASETS)
def test_random_split_users_with_few_items_keep_all_in_train(built, users_dat, name):
    sizes = np.array([len(items) for items in users_dat[name]])
    n_users = len(sizes)
    train = items_per_user(built[name] / f"{name}.P10-random-s0-train.inter", n_users)
    test = items_per_user(built[name] / f"{name}.P10-random-s0-test.inter", n_users)
    few = sizes <= 10
    assert np.array_equal(train, np.minimum(sizes, 10))
    assert (test[few] == 0).all()


def test_titles_cleaned(raw_data_root, built):
    raw_titles = read_lines(raw_data_root / "citeulike-a" / "titles.txt")
    titles = [clean_title(title) for title in raw_titles]
    assert len(titles) == EXPECTED["citeulike-a"]["n_items"]
    for bad in ("â€", "Ã", "Â", '""', "&amp;"):
        assert not any(bad in title for title in titles), bad
    assert titles[24] == 'Spectra of "real-world" graphs: beyond the semicircle law.'
    assert "cell–cell" in titles[31]
    items = read_atomic(built["citeulike-a"] / "citeulike-a.item")
    assert not items["title"].str.contains('â|Ã|"').any()


# ---------------------------------------------------------------- text helpers
def test_fix_mojibake_examples():
    assert fix_mojibake("cellâ€“cell") == "cell–cell"
    assert fix_mojibake("proteinÃ¢Â€Â“protein") == "protein–protein"  # read wrongly twice
    assert fix_mojibake("automating Â“word of mouthÂ”") == "automating “word of mouth”"
    assert fix_mojibake("Proteinsâ€ ") == "Proteins†"
    assert fix_mojibake("Déjà vu – naïve") == "Déjà vu – naïve"  # correct text untouched
    assert (
        unquote_csv('"Revisiting ""scale-free"" networks."') == 'Revisiting "scale-free" networks.'
    )


VECTOR_SCRIPT = """
import hashlib, sys
sys.path.insert(0, sys.argv[1])
from dataset_atomic.text import build_bow, doc2vec_vectors, lsi_vectors
words = "protein network gene social web learning model graph cell data mining tag".split()
docs = [[words[(i * 7 + k * 3) % len(words)] for k in range(3 + i % 5)] for i in range(60)] + [[]]
_, corpus = build_bow(docs, no_below=1, no_above=1.0, keep_n=100)
lsi = lsi_vectors(corpus, dim=8, seed=3)
d2v = doc2vec_vectors(docs, dim=8, seed=3, epochs=5)
print(hashlib.sha256(lsi.tobytes() + d2v.tobytes()).hexdigest())
"""


def test_lsi_reports_its_progress_and_gives_the_same_vectors():
    from dataset_atomic.text import build_bow, lsi_vectors

    words = "protein network gene social web learning model graph cell data mining tag".split()
    docs = [[words[(i * 7 + k * 3) % len(words)] for k in range(3 + i % 5)] for i in range(60)]
    _, corpus = build_bow(docs + [[]], no_below=1, no_above=1.0, keep_n=100)
    heard = []
    vectors = lsi_vectors(corpus, dim=8, seed=3, report=heard.append, every=20)
    assert np.array_equal(vectors, lsi_vectors(corpus, dim=8, seed=3))
    assert heard == ["LSI: SVD done, projecting 61 documents"] + [
        f"LSI: {n}/61 documents projected" for n in (20, 40, 60)
    ]


@pytest.mark.slow
def test_dense_vectors_identical_across_processes():
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", VECTOR_SCRIPT, str(Path(dataset_atomic.__file__).parents[1])],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(result.stdout.strip())
    assert len(digests) == 1


# ---------------------------------------------------------------- ensure_atomic on a fake raw dir
FAKE_WORDS = (
    "protein network gene social web learning model graph cell data mining folksonomy".split()
)
FAKE_TAGS = ["bio", "network_science", "ml", "web-2.0", "genomics", "hci"]


def dat_line(ids) -> str:
    return " ".join([str(len(ids)), *map(str, ids)])


def write_fake_citeulike_a(raw_dir: Path, n_users: int = 5, n_items: int = 40) -> None:
    """A tiny raw dir in the citeulike-a layout (users with 12..16 items)."""
    rng = np.random.default_rng(0)
    (raw_dir / "cvae-splits").mkdir(parents=True)
    titles = [" ".join(rng.choice(FAKE_WORDS, 4)) for _ in range(n_items)]
    titles[1] = "Cellâ€“cell network"
    titles[2] = '"The ""impact factor"" revisited."'
    (raw_dir / "titles.txt").write_text("\n".join(titles) + "\n", encoding="utf8")
    (raw_dir / "tags.dat").write_text("\n".join(FAKE_TAGS) + "\n")
    item_tags = [
        rng.choice(len(FAKE_TAGS), rng.integers(0, 3), replace=False) for _ in range(n_items)
    ]
    (raw_dir / "item-tag.dat").write_text("\n".join(dat_line(tags) for tags in item_tags) + "\n")
    users = [
        np.sort(rng.choice(n_items, rng.integers(12, 17), replace=False)) for _ in range(n_users)
    ]
    (raw_dir / "users.dat").write_text("\n".join(dat_line(items) for items in users) + "\n")
    for p in (1, 10):
        orders = [rng.permutation(items) for items in users]
        for part, pick in (("train", slice(None, p)), ("test", slice(p, None))):
            text = "\n".join(dat_line(order[pick]) for order in orders) + "\n"
            (raw_dir / f"cvae-splits/cf-{part}-{p}-users.dat").write_text(text)


@pytest.fixture
def fake_raw_root(tmp_path) -> Path:
    write_fake_citeulike_a(tmp_path / "raw" / "citeulike-a")
    return tmp_path / "raw"


def test_ensure_atomic_builds_once_then_uses_stamp(fake_raw_root, tmp_path, capsys):
    data_path = tmp_path / "dataset"
    out_dir = ensure_atomic("citeulike-a", data_path, fake_raw_root)
    assert out_dir == data_path / "citeulike-a"
    said = capsys.readouterr().err
    assert "building atomic files for citeulike-a" in said
    for stage in ("reading the users", "TF-IDF -> LSI", "Doc2Vec epoch 1/", "writing"):
        assert f"citeulike-a: {stage}" in said  # a build of minutes says what it does
    items = read_atomic(out_dir / "citeulike-a.item")
    assert len(items) == 40 and "cell" in items["title"][1].split()
    stamp_mtime = (out_dir / ".build-stamp.json").stat().st_mtime_ns

    assert ensure_atomic("citeulike-a", data_path, fake_raw_root) == out_dir
    assert capsys.readouterr().err == ""
    assert (out_dir / ".build-stamp.json").stat().st_mtime_ns == stamp_mtime


def test_ensure_atomic_rebuilds_when_raw_file_changes(fake_raw_root, tmp_path, capsys):
    data_path = tmp_path / "dataset"
    out_dir = ensure_atomic("citeulike-a", data_path, fake_raw_root)
    titles_path = fake_raw_root / "citeulike-a" / "titles.txt"
    os.utime(titles_path, ns=(1, 1))  # new mtime, same bytes: hash says unchanged
    capsys.readouterr()
    ensure_atomic("citeulike-a", data_path, fake_raw_root)
    assert capsys.readouterr().err == ""

    titles_path.write_text(
        titles_path.read_text().replace("Cellâ€“cell network", "Zebrafish genome")
    )
    ensure_atomic("citeulike-a", data_path, fake_raw_root)
    assert "raw files changed: titles.txt" in capsys.readouterr().err
    assert read_atomic(out_dir / "citeulike-a.item")["title"][1] == "zebrafish genome"
    assert not list(data_path.glob(".citeulike-a.*-*"))  # no temp or old dirs left


def test_ensure_atomic_rebuilds_when_an_output_is_deleted(fake_raw_root, tmp_path, capsys):
    out_dir = ensure_atomic("citeulike-a", tmp_path / "dataset", fake_raw_root)
    (out_dir / "citeulike-a.P1-test.inter").unlink()
    capsys.readouterr()
    ensure_atomic("citeulike-a", tmp_path / "dataset", fake_raw_root)
    assert "atomic files missing" in capsys.readouterr().err
    assert (out_dir / "citeulike-a.P1-test.inter").is_file()


def test_interrupted_build_leaves_no_half_files(fake_raw_root, tmp_path, monkeypatch):
    def broken_converter(raw_dir, out_dir):
        (Path(out_dir) / "citeulike-a.inter").write_text("user_id:token\titem_id:token\n0\t")
        raise KeyboardInterrupt

    monkeypatch.setitem(dataset_atomic.CONVERTERS, "citeulike-a", broken_converter)
    data_path = tmp_path / "dataset"
    with pytest.raises(KeyboardInterrupt):
        ensure_atomic("citeulike-a", data_path, fake_raw_root)
    assert not (data_path / "citeulike-a").exists()
    assert not list(data_path.glob(".citeulike-a.building-*"))


def test_missing_raw_dir_error_names_files_sources_and_env(tmp_path):
    nowhere = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as error:
        ensure_atomic("citeulike-t", tmp_path / "dataset", nowhere)
    message = str(error.value)
    for needed in (
        "users.dat",
        "mult.dat",
        "tag-item.dat",
        "cvae-splits/cf-train-1-users.dat",
        "js05212/citeulike-t",
        "eelxpeng/CollaborativeVAE",
        RAW_DATA_ENV,
        str(nowhere / "citeulike-t"),
    ):
        assert needed in message, needed
    assert not (tmp_path / "dataset" / "citeulike-t").exists()


def test_names_without_converter_are_left_to_recbole(tmp_path):
    assert ensure_atomic("ml-100k", tmp_path) is None


def test_raw_data_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv(RAW_DATA_ENV, str(tmp_path))
    assert dataset_atomic.raw_data_root() == tmp_path
    monkeypatch.delenv(RAW_DATA_ENV)
    assert dataset_atomic.raw_data_root().parts[-2:] == ("shared", "data")


# ---------------------------------------------------------------- raw text: abstract subset
def test_abstract_subset_raw_text_path(raw_data_root):
    from dataset_atomic.abstracts import abstract_subset_bow, read_abstract_subset
    from dataset_atomic.text import clean_title

    rows = read_abstract_subset(raw_data_root / "citeulike-a")
    assert len(rows) == 1929 and len({r["index"] for r in rows}) == 1929
    titles = (raw_data_root / "citeulike-a" / "titles.txt").read_text(encoding="utf-8").splitlines()
    same = sum(clean_title(titles[r["index"]]).lower() == r["title"].lower() for r in rows)
    assert (
        same >= 1800
    )  # 1,903 exact title matches, 26 fuzzy (data README); cleaning differs a little
    indices, vocab, corpus = abstract_subset_bow(raw_data_root / "citeulike-a")
    _, title_vocab, title_corpus = abstract_subset_bow(
        raw_data_root / "citeulike-a", with_abstract=False
    )
    words = sum(c for doc in corpus for _, c in doc)
    title_words = sum(c for doc in title_corpus for _, c in doc)
    assert len(vocab) > 2 * len(title_vocab) and words > 10 * title_words  # abstracts add real text
    assert sum(not doc for doc in corpus) < 5


# ---------------------------------------------------------------- amazon-mi and lfm2k (real data)
MM_EXPECTED = {
    "amazon-mi": dict(n_users=1429, n_items=900, n_inters=10261, empty_reviews=7),
    "lfm2k": dict(n_users=1858, n_items=1425, n_inters=56345),
}
AMAZON_INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\treview:token"
AMAZON_ITEM_HEADER = "item_id:token\ttitle:token_seq\tcategory:token\tprice:float\tmeta:token_seq"
LFM2K_ITEM_HEADER = (
    "item_id:token\ttext_vec:float_seq\taudio_vec:float_seq\tvggish_vec:float_seq\ttags:token_seq"
)
LFM2K_VECTORS = {
    "text_vec": ("all-MiniLM-L6-v2.npy", 384),
    "audio_vec": ("whisper.npy", 512),
    "vggish_vec": ("vggish.npy", 128),
}


@pytest.fixture(scope="module")
def built_mm(raw_data_root, tmp_path_factory) -> dict:
    """amazon-mi and lfm2k built once per module by ensure_atomic (about 1 s each)."""
    data_path = tmp_path_factory.mktemp("atomic-mm")
    return {name: ensure_atomic(name, data_path, raw_root=raw_data_root) for name in MM_EXPECTED}


def header_of(path: Path) -> str:
    with open(path, encoding="utf8") as lines:
        return lines.readline().rstrip("\n")


def build_stats(out_dir: Path) -> dict:
    from dataset_atomic.common import read_stamp

    return read_stamp(out_dir)["stats"]


def test_amazon_counts_match_data_readme(built_mm):
    out_dir = built_mm["amazon-mi"]
    assert out_dir.name == "amazon-mi"
    inter = read_atomic(out_dir / "amazon-mi.inter")
    expected = MM_EXPECTED["amazon-mi"]
    assert len(inter) == expected["n_inters"]
    assert inter["user_id"].nunique() == expected["n_users"]
    assert inter["item_id"].nunique() == expected["n_items"]
    assert not inter.duplicated(["user_id", "item_id"]).any()
    assert (inter["review"] == "").sum() == expected["empty_reviews"]
    assert sorted(inter["rating"].astype(float).unique()) == [1, 2, 3, 4, 5]
    assert inter["timestamp"].str.fullmatch(r"\d+").all()
    stats = build_stats(out_dir)
    assert stats["duplicate_pairs"] == 0 and stats["empty_review_texts"] == 7
    assert stats["ratings"] == {"1": 217, "2": 250, "3": 772, "4": 2084, "5": 6938}


def test_amazon_review_is_one_token_cell(built_mm, raw_data_root):
    import gzip
    import json

    from dataset_atomic.text import tokenize_words

    path = built_mm["amazon-mi"] / "amazon-mi.inter"
    assert header_of(path) == AMAZON_INTER_HEADER
    lines = path.read_text(encoding="utf8").split("\n")[1:-1]
    assert all(line.count("\t") == 4 for line in lines)  # no tab inside a review
    reviews = [line.split("\t")[4] for line in lines]
    word = r"[^\W_]+(?:'[^\W_]+)*"
    assert all(re.fullmatch(rf"({word}( {word})*)?", review) for review in reviews)
    assert all(review == review.lower() for review in reviews)
    assert sum("'" in review for review in reviews) > 1000  # it's, don't ... kept whole
    raw_path = (
        raw_data_root / "amazon-musical-instruments" / "reviews_Musical_Instruments_5.json.gz"
    )
    with gzip.open(raw_path, "rt", encoding="utf8") as raw:
        raw_rows = [json.loads(line) for line in raw]
    assert len(raw_rows) == len(reviews)  # no duplicates: same order as the raw file
    for raw_row, review in zip(raw_rows, reviews):
        assert review == " ".join(tokenize_words(html.unescape(raw_row["reviewText"])))
        assert (review == "") == (raw_row["reviewText"].strip() == "")
    assert reviews[0].startswith(
        "not much to write about here but it does exactly what it's supposed to"
    )


def test_amazon_item_file(built_mm):
    from dataset_atomic.text import tokenize

    out_dir = built_mm["amazon-mi"]
    assert header_of(out_dir / "amazon-mi.item") == AMAZON_ITEM_HEADER
    items = read_atomic(out_dir / "amazon-mi.item")
    inter = read_atomic(out_dir / "amazon-mi.inter")
    assert len(items) == MM_EXPECTED["amazon-mi"]["n_items"] and items["item_id"].is_unique
    assert set(items["item_id"]) == set(inter["item_id"])  # every .inter item has a row, no extra
    assert not items["category"].str.contains(r"\s").any()
    assert items["category"].nunique() == 149 and (items["category"] != "").all()
    prices = pd.to_numeric(items["price"])
    assert prices.notna().all() and (prices <= 0.1).sum() == 3
    for title, category, meta in zip(items["title"], items["category"], items["meta"]):
        assert meta.split() == title.split() + tokenize(category.replace("_", " "))
    assert (items["title"] != "").all() and (items["meta"] != "").all()
    first = items.set_index("item_id").loc["B00004Y2UT"]
    assert first["category"] == "Instrument_Cables" and first["price"] == "19.56"
    assert (
        first["meta"]
        == "monster standard instrument cable straight straight plugs instrument cables"
    )
    stats = build_stats(out_dir)
    assert stats["meta_items_without_reviews"] == 0 and stats["items_without_metadata"] == 0


def test_lfm2k_counts_and_inter(built_mm):
    out_dir = built_mm["lfm2k"]
    path = out_dir / "lfm2k.inter"
    assert header_of(path) == "user_id:token\titem_id:token"
    inter = read_atomic(path)
    expected = MM_EXPECTED["lfm2k"]
    assert len(inter) == expected["n_inters"]
    assert inter["user_id"].nunique() == expected["n_users"]
    assert inter["item_id"].nunique() == expected["n_items"]
    assert not inter.duplicated().any()
    stats = build_stats(out_dir)
    assert stats["inter_has_header"] and stats["ratings"] == {"1": 56345}
    assert stats["x_label_counts"] == {"0": 44327, "1": 4799, "2": 7219}


def test_lfm2k_item_vectors_and_tags(built_mm, raw_data_root):
    from dataset_atomic.text import tokenize

    out_dir = built_mm["lfm2k"]
    assert header_of(out_dir / "lfm2k.item") == LFM2K_ITEM_HEADER
    items = read_atomic(out_dir / "lfm2k.item")
    n_items = MM_EXPECTED["lfm2k"]["n_items"]
    assert list(items["item_id"]) == [str(i) for i in range(n_items)]
    assert set(read_atomic(out_dir / "lfm2k.inter")["item_id"]) <= set(items["item_id"])
    raw_dir = raw_data_root / "lastfm-2k"
    for field, (file, dim) in LFM2K_VECTORS.items():
        matrix = np.array([np.array(cell.split(), dtype=float) for cell in items[field]])
        assert matrix.shape == (n_items, dim), field
        assert np.isfinite(matrix).all()
        assert np.allclose(matrix, np.load(raw_dir / file), rtol=1e-5, atol=1e-7), field  # %.6g
    artists = pd.read_csv(raw_dir / "item_id_map.tsv", sep="\t", dtype=str, quoting=3)[
        "original_artistID"
    ]
    texts = dict(line.split("\t", 1) for line in read_lines(raw_dir / "lfm2k_text.tsv")[1:])
    for item in (0, 2, 700, n_items - 1):
        assert items["tags"][item].split() == tokenize(texts[artists[item]]), item
    assert (items["tags"] != "").all()  # every artist has tags text


# ---------------------------------------------------------------- amazon-mi and lfm2k: malformed
# raw files
def review_row(
    user="U1", item="I1", rating=5.0, text="Great strings, don't break.", when=1393545600
):
    row = {
        "reviewerID": user,
        "asin": item,
        "reviewText": text,
        "overall": rating,
        "unixReviewTime": when,
    }
    return {key: value for key, value in row.items() if value is not None}


def write_fake_amazon(raw_dir: Path, reviews: list[dict], items=("I1", "I2")) -> None:
    import gzip
    import json

    raw_dir.mkdir(parents=True, exist_ok=True)
    with gzip.open(raw_dir / "reviews_Musical_Instruments_5.json.gz", "wt", encoding="utf8") as out:
        out.writelines(json.dumps(row) + "\n" for row in reviews)
    meta = ["Product ID,Description,price,Category"]
    meta += [
        f"{item},Guitar Strings &amp; Picks {item},{i + 1}.5,Acoustic Guitar Strings"
        for i, item in enumerate(items)
    ]
    meta += ["I9,Unreviewed Cable,,Cables"]
    (raw_dir / "meta_Musical_Instruments_5.csv").write_text("\n".join(meta) + "\n", encoding="utf8")


FAKE_REVIEWS = [
    review_row(),
    review_row("U2", "I2", 3.0, ""),
    review_row("U1", "I2", 4, "Ok &#34;cable&#34;"),
]


def test_fake_amazon_builds(tmp_path):
    raw_root = tmp_path / "raw"
    write_fake_amazon(
        raw_root / "amazon-musical-instruments", FAKE_REVIEWS + [review_row(text="again")]
    )
    out_dir = ensure_atomic("amazon-mi", tmp_path / "dataset", raw_root=raw_root)
    inter = read_atomic(out_dir / "amazon-mi.inter")
    assert list(inter["review"]) == [
        "great strings don't break",
        "",
        "ok cable",
    ]  # duplicate dropped
    assert list(inter["rating"]) == ["5", "3", "4"]
    items = read_atomic(out_dir / "amazon-mi.item")
    assert list(items["item_id"]) == ["I1", "I2"]  # I9 has no review: dropped
    assert items["meta"][0] == "guitar strings picks i1 acoustic guitar strings"
    assert items["category"][0] == "Acoustic_Guitar_Strings" and items["price"][0] == "1.5"
    stats = build_stats(out_dir)
    assert stats["duplicate_pairs"] == 1 and stats["meta_items_without_reviews"] == 1
    assert stats["empty_reviews"] == 1


@pytest.mark.parametrize(
    "bad_row, field",
    [
        (review_row(item=None), "asin"),
        (review_row(user=""), "reviewerID"),
        (review_row(rating=7), "overall"),
        (review_row(rating=0), "overall"),
        (review_row(rating="five"), "overall"),
    ],
)
def test_fake_amazon_malformed_row_names_file_line_and_field(tmp_path, bad_row, field):
    raw_root = tmp_path / "raw"
    write_fake_amazon(
        raw_root / "amazon-musical-instruments", FAKE_REVIEWS[:1] + [bad_row] + FAKE_REVIEWS[1:]
    )
    with pytest.raises(ValueError) as error:
        ensure_atomic("amazon-mi", tmp_path / "dataset", raw_root=raw_root)
    message = str(error.value)
    assert "reviews_Musical_Instruments_5.json.gz:2:" in message and field in message, message
    assert not (tmp_path / "dataset" / "amazon-mi").exists()


def write_fake_lfm2k(raw_dir: Path, n_items: int = 4, rows: dict | None = None) -> None:
    raw_dir.mkdir(parents=True, exist_ok=True)
    pairs = [(u, i) for u in range(3) for i in range(n_items) if (u + i) % 2 == 0]
    inter = ["userID\titemID\trating\tx_label"] + [f"{u}\t{i}\t1\t0" for u, i in pairs]
    (raw_dir / "lfm2k.inter").write_text("\n".join(inter) + "\n")
    artists = [str(10 + 3 * i) for i in range(n_items)]
    item_map = ["npy_row_and_inter_itemID\toriginal_artistID\tartist_name"]
    item_map += [f"{i}\t{a}\tBand {i}" for i, a in enumerate(artists)]
    (raw_dir / "item_id_map.tsv").write_text("\n".join(item_map) + "\n")
    texts = ["artistID\ttext", "1\tjazz"] + [f"{a}\tpost-rock,seen live,2009" for a in artists[1:]]
    (raw_dir / "lfm2k_text.tsv").write_text("\n".join(texts) + "\n")
    rng = np.random.default_rng(0)
    for file, dim in (("all-MiniLM-L6-v2.npy", 6), ("whisper.npy", 5), ("vggish.npy", 3)):
        matrix = rng.normal(size=((rows or {}).get(file, n_items), dim)).astype(np.float32)
        np.save(raw_dir / file, matrix)


def test_fake_lfm2k_builds(tmp_path):
    raw_root = tmp_path / "raw"
    write_fake_lfm2k(raw_root / "lastfm-2k")
    out_dir = ensure_atomic("lfm2k", tmp_path / "dataset", raw_root=raw_root)
    items = read_atomic(out_dir / "lfm2k.item")
    assert list(items["tags"]) == [
        "",
        "post rock seen live",
        "post rock seen live",
        "post rock seen live",
    ]
    assert [len(cell.split()) for cell in items.iloc[0, 1:4]] == [6, 5, 3]
    assert build_stats(out_dir)["artists_without_tags_text"] == 1


def test_fake_lfm2k_nan_names_file_field_and_row(tmp_path):
    raw_dir = tmp_path / "raw" / "lastfm-2k"
    write_fake_lfm2k(raw_dir)
    matrix = np.load(raw_dir / "whisper.npy")
    matrix[2, 1] = np.nan
    np.save(raw_dir / "whisper.npy", matrix)
    with pytest.raises(ValueError) as error:
        ensure_atomic("lfm2k", tmp_path / "dataset", raw_root=tmp_path / "raw")
    message = str(error.value)
    assert "whisper.npy" in message and "audio_vec" in message and "row 2" in message, message


def test_fake_lfm2k_wrong_row_count_names_file_and_field(tmp_path):
    raw_dir = tmp_path / "raw" / "lastfm-2k"
    write_fake_lfm2k(raw_dir, rows={"vggish.npy": 3})
    with pytest.raises(ValueError) as error:
        ensure_atomic("lfm2k", tmp_path / "dataset", raw_root=tmp_path / "raw")
    message = str(error.value)
    assert "vggish.npy" in message and "vggish_vec" in message and "item_id_map.tsv" in message, (
        message
    )


def test_missing_raw_dir_error_for_amazon_names_its_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        ensure_atomic("amazon-mi", tmp_path / "dataset", tmp_path / "nowhere")
    message = str(error.value)
    for needed in (
        "reviews_Musical_Instruments_5.json.gz",
        "meta_Musical_Instruments_5.csv",
        str(tmp_path / "nowhere" / "amazon-musical-instruments"),
        RAW_DATA_ENV,
    ):
        assert needed in message, needed


def test_ensure_atomic_never_overwrites_files_it_did_not_write(fake_raw_root, tmp_path, capsys):
    out_dir = ensure_atomic("citeulike-a", tmp_path / "dataset", fake_raw_root)
    copy = tmp_path / "copy" / "citeulike-a"
    shutil.copytree(out_dir, copy)
    (copy / ".build-stamp.json").unlink()  # a user's copy of the files: no stamp
    edited = (copy / "citeulike-a.inter").read_text() + "u_new\t1\n"
    (copy / "citeulike-a.inter").write_text(edited)
    capsys.readouterr()
    assert ensure_atomic("citeulike-a", tmp_path / "copy", fake_raw_root) == copy
    assert "using" in capsys.readouterr().err and (copy / "citeulike-a.inter").read_text() == edited
    # the converter's own files, edited, then the raw data changes: no silent rebuild over the edit
    inter = out_dir / "citeulike-a.inter"
    inter.write_text(inter.read_text() + "u_new\t1\n")
    titles = fake_raw_root / "citeulike-a" / "titles.txt"
    titles.write_text(titles.read_text().replace("Cellâ€“cell network", "Zebrafish genome"))
    with pytest.raises(
        FileExistsError,
        match=r"raw files changed: titles.txt\) but has files edited since the "
        r"converter wrote them: citeulike-a.inter: .*delete .* to rebuild",
    ):
        ensure_atomic("citeulike-a", tmp_path / "dataset", fake_raw_root)
    shutil.rmtree(out_dir)  # the documented way to force a rebuild
    ensure_atomic("citeulike-a", tmp_path / "dataset", fake_raw_root)
    assert "u_new" not in inter.read_text()
